"""fmbook.results holds what the chapters' stored full-profile runs glued, nothing else."""

import json

import pytest
import setup_cell

import fmbook.results as results


def glued(notebook: str) -> dict[str, float]:
    """The values a stored notebook glued (myst-nb's scrapbook outputs), by name."""
    nb = json.loads((setup_cell.ROOT / "chapters" / notebook).read_text(encoding="utf-8"))
    values = {}
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is not None:
                prefix = out["metadata"]["scrapbook"]["mime_prefix"]
                values[name] = float(out["data"][prefix + "text/plain"])
    return values


def stored_profile(notebook: str) -> str:
    nb = json.loads((setup_cell.ROOT / "chapters" / notebook).read_text(encoding="utf-8"))
    text = "".join("".join(o.get("text", "")) for o in nb["cells"][1].get("outputs", []))
    return text.rsplit("profile: ", 1)[-1].strip()


@pytest.mark.parametrize("constant", sorted(results.SOURCES))
def test_constant_is_the_stored_full_run_result(constant):
    notebook, name, decimals = results.SOURCES[constant]
    assert stored_profile(notebook) == "full", f"{notebook}: the stored run is not full-profile"
    values = glued(notebook)
    assert name in values, f"{notebook} no longer glues {name!r}"
    assert getattr(results, constant) == round(values[name], decimals), (
        f"fmbook.results.{constant} = {getattr(results, constant)}, but the stored run of "
        f"{notebook} glued {name} = {values[name]:.{decimals + 2}f}: update fmbook/results.py"
    )


def test_every_constant_has_a_source():
    constants = {n for n in vars(results) if n.isupper() and n != "SOURCES"}
    assert constants == set(results.SOURCES)
