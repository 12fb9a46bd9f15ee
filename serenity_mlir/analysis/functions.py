"""Finding the function whose body runs the model.

At IREE's flow phase ``@f`` wraps ``@f$async``, which holds the dispatches;
the user names ``@f`` (or nothing, when the module has one public function).
"""

from __future__ import annotations

from iree.compiler import ir

from serenity_mlir.errors import FunctionChoiceError


def func_name(op: ir.Operation) -> str:
    return ir.StringAttr(op.attributes["sym_name"]).value


def is_public(op: ir.Operation) -> bool:
    if "sym_visibility" not in op.attributes:
        return True
    return ir.StringAttr(op.attributes["sym_visibility"]).value == "public"


FUNC_OPS = ("func.func", "util.func")


def public_functions(module: ir.Operation) -> list[str]:
    """User-facing public functions (IREE's ``$async`` twins are folded into
    the name the user calls)."""
    names = []
    for op in module.regions[0].blocks[0].operations:
        o = op.operation
        if o.name in FUNC_OPS and is_public(o) and len(o.regions[0].blocks) > 0:
            name = func_name(o)
            if not name.endswith("$async") and not name.startswith("__"):
                names.append(name)
    return names


def find_body_function(module: ir.Operation, function: str | None) -> tuple[str, ir.Operation]:
    """Returns (user-facing name, the function op whose body runs the model).

    At the flow level IREE wraps ``@f`` around ``@f$async``, which holds the
    dispatches; that is the body to schedule.
    """
    funcs: dict[str, ir.Operation] = {}
    for op in module.regions[0].blocks[0].operations:
        o = op.operation
        if o.name in FUNC_OPS:
            funcs[func_name(o)] = o
    public = public_functions(module)
    if function is None:
        if not public:
            raise FunctionChoiceError("the module has no public function to schedule")
        if len(public) > 1:
            raise FunctionChoiceError(
                f"the module has {len(public)} public functions ({', '.join(public)}): pick one with --function"
            )
        function = public[0]
    elif function not in public:
        raise FunctionChoiceError(
            f"no public function '{function}' in the module (it has: {', '.join(public) or 'none'})"
        )
    body = funcs.get(function + "$async", funcs[function])
    return function, body
