"""A signal that lands inside a hook Python wraps (``__set_name__`` during a
class body, as in an import) is still reported as the interruption."""

from __future__ import annotations

import pytest

from serenity_mlir.tools.errors import EXIT_INTERRUPTED, Terminated, report_error


def test_wrapped_signal_is_the_interruption(capsys: pytest.CaptureFixture[str]) -> None:
    class Hook:
        def __set_name__(self, owner: type, name: str) -> None:
            raise Terminated("SIGTERM")

    with pytest.raises(BaseException) as info:
        type("Choice", (), {"without": Hook()})
    assert report_error(info.value) == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "error: interrupted by SIGTERM", err
    assert "Traceback" not in err


def test_a_plain_runtime_error_stays_internal(capsys: pytest.CaptureFixture[str]) -> None:
    assert report_error(RuntimeError("boom")) != EXIT_INTERRUPTED
    assert "internal error" in capsys.readouterr().err
