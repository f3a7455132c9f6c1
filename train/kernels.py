"""`train.kernels`: which implementation of the readable modules a model runs, chosen from outside it.

`reference` runs src/ as written. `fast` (the default) swaps each module that has a substitute in
src/kernels/ for it, where the substitute computes that module's function (its `applies`). The
model files never import a substitute and read no switch; as with Hugging Face's
`attn_implementation`, the choice is made when the model is built, here and only here.

A substitute is a subclass of its module that overrides `forward` only, and the swap sets the
module's class in place (as torch.nn.utils.parametrize does): the module keeps its parameters,
buffers, submodules and state_dict keys, so a checkpoint does not care which implementation trained
it, and an optimiser built before the swap still holds the same parameters.
"""
from src.kernels import SUBSTITUTES

CHOICES = ("fast", "reference")
READABLE = {fast: readable for readable, fast in SUBSTITUTES.items()}   # fast -> readable


def use_kernels(model, choice):
    """`model` (changed in place, and returned) with every module that has a substitute running
    `choice`'s implementation: "fast" where the substitute applies, else the readable module."""
    if choice not in CHOICES:
        raise ValueError(f"kernels: {choice!r} is not one of {', '.join(CHOICES)}")
    for module in model.modules():
        readable = READABLE.get(type(module), type(module))
        fast = SUBSTITUTES.get(readable)
        if fast is not None:
            module.__class__ = fast if choice == "fast" and fast.applies(module) else readable
    return model


def substituted(model):
    """{module name: substitute class name} of the modules of `model` that run a substitute."""
    return {name: type(module).__name__ for name, module in model.named_modules() if type(module) in READABLE}
