"""The three studies, one package per paper (`repro.studies.self_rewarding`, `repro.studies.rlaif`,
`repro.studies.eva`), on the base model M0 of `repro.studies.base` and what they share in
`repro.studies.common`."""
