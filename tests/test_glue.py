"""fmbook.book.glue stores numbers the prose can format, and refuses what it cannot."""

import numpy as np
import pytest
import torch

from fmbook.book import glue


def test_glue_stores_plain_numbers_for_format_specs(capsys):
    assert type(glue("acc", np.float64(0.25))) is float
    assert type(glue("n", np.int64(7))) is int
    assert glue("loss", torch.tensor(1.5)) == 1.5


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("bad name", 1.0, "letters"),
        ("loss", float("nan"), "NaN"),
        ("many", torch.ones(3), "single number"),
    ],
)
def test_glue_rejects_what_the_prose_cannot_show(name, value, message):
    with pytest.raises(ValueError, match=message):
        glue(name, value)
