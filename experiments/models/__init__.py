"""The model zoo: MLP, GPT, LLaMA, CNN and transformers architectures (`hf`), each buildable
at any width with the same parameter names.

    factory = model_factory(GPTConfig(), info)          # width -> nn.Module
    shapes = mucore.infer_base_shapes(factory, base_width=64)
    model = factory(512)
    setup = mucore.parametrize(model, shapes, "mup", mucore.HParams())

Every model uses `mucore.Readout` for its head and `mucore.InputScale` after its input layer, so
the same code runs under "sp" and "mup": the parametrization only changes multipliers, inits and
learning rates (TP5, Yang et al., 2022). At the base width both give identical models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from experiments.lazy import lazy_exports, type_checking_exports

if TYPE_CHECKING:
    from experiments.models.catalog import ModelInfo
    from experiments.models.cnn import CNN
    from experiments.models.configs import (
        CNNConfig,
        CustomModelConfig,
        GPTConfig,
        HFConfig,
        LlamaConfig,
        MLPConfig,
        ModelConfig,
    )
    from experiments.models.gpt import GPT, CausalSelfAttention
    from experiments.models.llama import Llama, LlamaAttention
    from experiments.models.mlp import MLP
    from experiments.models.registry import ModelOption, RegisteredModel
    from experiments.models.zoo import (
        build_model,
        check_task,
        check_widths,
        count_params,
        depth_model_factory,
        model_factory,
    )

# The public names are the imports above, each loaded on first use (PEP 562) so that
# `experiments.models.configs` (the spec's `model:` block) imports without torch.
_EXPORTS = type_checking_exports(__name__, globals())
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
