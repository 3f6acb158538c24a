"""Results of one chapter's full-profile run that other chapters quote.

A chapter that needs another chapter's number imports it from here instead of typing it:
``from fmbook.results import GPT_VAL_LOSS``. Each constant names the chapter and the glue
name under which that chapter's stored (full-profile) run recorded the value;
``tests/test_results.py`` reads the glued value from the stored notebook and fails when
the two differ, so a rerun that changes the result also forces this file to change.
"""

from __future__ import annotations

#: Final validation loss (nats per character) of the character-level GPT of
#: chapters/3-algorithms/pretraining-gpt.ipynb, glue name ``gpt_val_loss``, rounded to
#: the three decimals the chapters quote.
GPT_VAL_LOSS = 1.534

#: constant -> (notebook under chapters/, glue name, decimals it is rounded to)
SOURCES = {
    "GPT_VAL_LOSS": ("3-algorithms/pretraining-gpt.ipynb", "gpt_val_loss", 3),
}
