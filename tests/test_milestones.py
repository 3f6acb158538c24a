import re

from conftest import REPO_ROOT

from fmbook.data import milestones


def test_every_row_cites_a_reference_of_the_book():
    table = milestones.load()
    bib = (REPO_ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    keys = set(re.findall(r"^@\w+\{([^,]+),", bib, re.M))
    assert table.source_key.notna().all()
    assert set(table.source_key) <= keys, set(table.source_key) - keys
    assert table.month.between(1, 12).all()
    assert (table.year * 12 + table.month).is_monotonic_increasing  # in date order
    assert set(table.tokens_kind.dropna()) <= {"corpus", "corpus words", "seen"}
    assert (table.tokens.isna() == table.tokens_kind.isna()).all()


def test_numbers_that_introductions_often_get_wrong():
    row = milestones.load().set_index("model")
    assert row.loc["BERT-large", "params"] == 340e6
    assert row.loc["GPT-3", "params"] == 175e9 and row.loc["GPT-3", "tokens"] == 300e9


def test_pretrained_transfer_came_before_bert():
    """ULMFiT, ELMo and GPT-1 pretrained a language model and transferred it before BERT."""
    table = milestones.load().set_index("model")
    date = table.year * 12 + table.month
    assert (date[["ULMFiT", "ELMo", "GPT-1"]] < date["BERT-base"]).all()
    assert date["BERT-base"] == date["BERT-large"] == 2018 * 12 + 10
    assert table.loc["GPT-1", "source_key"] == "radford2018improving"
    assert table.loc["ELMo", "source_key"] == "peters2018elmo"
