"""``fmbook-train``: the book's tasks and DataModules on the command line (LightningCLI).

The same classes the chapters use, configured by YAML instead of Python::

    fmbook-train fit --config gpt-shakespeare
    fmbook-train fit --config gpt-shakespeare --trainer.devices 2 --trainer.strategy ddp
    python -m fmbook.cli fit --config my-run.yaml --trainer.max_steps 100

``--config`` takes a path or the bare name of a config shipped with the package
(``fmbook/configs/<name>.yaml``, listed by :func:`config_names`). Everything in a config
can be overridden by a later flag (``--model.lr 1e-3``, ``--data.batch_size 64``).
``LightningCLI`` builds the parser from the signatures of ``lightning.Trainer``, the task
(any :class:`~fmbook.tasks.base.AdamWCosineTask`, e.g. ``CausalLM``) and the DataModule,
so every constructor argument is a flag; ``fmbook-train fit --help`` lists them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def config_names() -> list[str]:
    """The configs shipped with fmbook, by bare name."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def config_path(name_or_path: str) -> Path:
    """A config given as a path (kept as it is) or as the bare name of a shipped config."""
    path = Path(name_or_path)
    if path.exists():
        return path
    if path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        raise FileNotFoundError(f"no config file {name_or_path!r}")
    shipped = CONFIG_DIR / f"{name_or_path}.yaml"
    if not shipped.is_file():
        raise FileNotFoundError(
            f"{name_or_path!r} is neither a file nor a shipped config; "
            f"shipped configs: {', '.join(config_names())}"
        )
    return shipped


def resolve_config_args(args: Sequence[str]) -> list[str]:
    """``args`` with the value of every ``--config NAME`` / ``--config=NAME`` made a path."""
    out, args = [], list(args)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--config" and i + 1 < len(args):
            out += [arg, str(config_path(args[i + 1]))]
            i += 2
            continue
        if arg.startswith("--config="):
            arg = "--config=" + str(config_path(arg.split("=", 1)[1]))
        out.append(arg)
        i += 1
    return out


# Library notes that say nothing about a run (the book's chapters hide the same ones).
QUIET_WARNINGS = (
    ".*does not have many workers.*",
    ".*LeafSpec.*",
    ".*'pin_memory' argument is set as true but no accelerator.*",
)


def _quieten() -> None:
    import logging
    import warnings

    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    import lightning  # noqa: F401  (importing it resets its loggers' levels)

    # Lightning's hardware banner and tips go; its warnings and errors stay.
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _cli_class():
    from lightning.pytorch.cli import LightningCLI

    class BookCLI(LightningCLI):
        """LightningCLI that prints one line per finished ``fit`` (from rank 0)."""

        def after_fit(self):
            trainer = self.trainer
            if trainer.global_rank != 0:
                return
            metrics = {
                k: float(v)
                for k, v in trainer.callback_metrics.items()
                if k in ("train_loss", "val_loss")
            }
            losses = ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items()))
            print(
                f"fit done: {trainer.global_step} steps on {trainer.world_size} "
                f"process(es) ({type(trainer.strategy).__name__}); {losses}",
                flush=True,
            )

    return BookCLI


def main(args: Sequence[str] | None = None):
    """Entry point of ``fmbook-train`` (and ``python -m fmbook.cli``); returns the CLI.

    ``args`` (a list of strings) replaces the command line, e.g. in a test."""
    _quieten()
    import lightning as L

    from .tasks.base import AdamWCosineTask

    if args is None:  # rewritten in place: DDP's launcher starts the other ranks from sys.argv
        sys.argv[1:] = resolve_config_args(sys.argv[1:])
    else:
        args = resolve_config_args(args)
    return _cli_class()(
        AdamWCosineTask,
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_callback=None,  # writes no config file next to the (disabled) logs
        args=args,
    )


if __name__ == "__main__":
    main()
