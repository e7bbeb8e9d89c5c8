"""Finished stages the package ships, so that a cold build does not pay for them: ``<name>/<key>/``,
each the very folder a computation of that stage writes (its manifest, ``model/`` in the Hugging Face
format, ``snapshots/``) plus a model card (``README.md``). The run store adopts one when it is asked
for that stage and key (`repro.runs.store`); ``repro run 00_world -p rebuild_base=true`` pre-trains
it from nothing instead."""
