"""The LLM-as-a-Judge prompt: the additive five-point rubric of Self-Rewarding Language Models.

The paper's judge prompt (Yuan et al., 2024, figure 2) shows the user's instruction and a response,
lists the rubric (one point each: relevant; addresses a substantial part; answers the basic
elements usefully; direct, complete and well organised from an assistant's perspective; impeccably
tailored, concise, expert), asks for a brief justification, and asks the judge to finish with
``Score: <points>``. Two templates follow that structure point for point, in our own words:

- ``"full"``: plain English, for real instruction-following models at paper scale;
- ``"compact"``: the same five points in the tiny world's vocabulary and in few tokens, so that a judge
  prompt, a long task and a response fit in the tiny models' context (and every word is a token of
  the word-level tokenizer: `template_words` feeds the tokenizer).

`repro.judges.parsing.parse_score` reads the score from either kind of answer.
"""

from __future__ import annotations

import re

TEMPLATES = {
    "compact": (
        "rate the response to the task with the additive 5 point rubric : add 1 point if it is relevant , "
        "1 if a substantial part is right , 1 if the basic elements are right , 1 if it is direct and "
        "complete , 1 if it is concise and impeccable . justify briefly , then end with score : n . "
        "task : {prompt} response : {response}"
    ),
    "full": (
        "Review the user's question and the corresponding response using the additive 5-point scoring "
        "system described below. Points are accumulated based on the satisfaction of each criterion:\n"
        "- Add 1 point if the response is relevant and provides some information related to the user's "
        "inquiry, even if it is incomplete or contains some irrelevant content.\n"
        "- Add another point if the response addresses a substantial portion of the user's question, but "
        "does not completely resolve the query or provide a direct answer.\n"
        "- Award a third point if the response answers the basic elements of the user's question in a "
        "useful way, regardless of whether it seems to have been written by an AI Assistant or has "
        "elements typically found in blogs or search results.\n"
        "- Grant a fourth point if the response is clearly written from an AI Assistant's perspective, "
        "addressing the user's question directly and comprehensively, and is well-organized and helpful, "
        "even if there is slight room for improvement in clarity, conciseness or focus.\n"
        "- Bestow a fifth point for a response that is impeccably tailored to the user's question by an "
        "AI Assistant, without extraneous information, reflecting expert knowledge, and demonstrating a "
        "high-quality, engaging, and insightful answer.\n\n"
        "User: {prompt}\n\n<response>{response}</response>\n\n"
        "After examining the user's instruction and the response, briefly justify your total score in up "
        "to 100 words, then conclude with the score in the format: \"Score: <total points>\"."
    ),
}
DEFAULT_TEMPLATE = "compact"


def judge_prompt(prompt: str, response: str, template: str = DEFAULT_TEMPLATE) -> str:
    """The judge's instruction for one (task, response) pair."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown judge template {template!r}; available: {', '.join(TEMPLATES)}")
    return TEMPLATES[template].format(prompt=prompt, response=response)


def judge_messages(prompt: str, response: str, template: str = DEFAULT_TEMPLATE) -> list[dict[str, str]]:
    """The judge's instruction as a one-turn conversation (for the chat template)."""
    return [{"role": "user", "content": judge_prompt(prompt, response, template)}]


def template_words(template: str = DEFAULT_TEMPLATE) -> set[str]:
    """Every whitespace-separated word of a template outside its ``{placeholders}``."""
    return set(re.sub(r"\{\w+\}", " ", TEMPLATES[template]).split())
