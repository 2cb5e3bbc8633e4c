"""A third-party TF->PyTorch converter run unmodified: transformers' ``load_tf_weights_in_bert``
(which calls ``tf.train.list_variables`` and ``tf.train.load_variable``) on a tiny BERT
checkpoint, the state dict saved with safetensors. ``tests/test_compat.py`` runs it with real
TensorFlow and under ``python -m tfckpt.compat`` and compares the results bit for bit.

Usage: python compat_bert.py CHECKPOINT_PREFIX OUT.safetensors
"""

from __future__ import annotations

import sys

TINY_BERT = {"vocab_size": 30, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
             "intermediate_size": 16, "max_position_embeddings": 16, "type_vocab_size": 2}


def convert(checkpoint: str, out: str) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, BertForPreTraining
    from transformers.models.bert.modeling_bert import load_tf_weights_in_bert

    config = BertConfig(**TINY_BERT)
    torch.manual_seed(0)
    model = BertForPreTraining(config)
    load_tf_weights_in_bert(model, config, checkpoint)
    # Copies: tied weights (decoder and word embeddings) share memory, which save_file refuses.
    save_file({name: value.detach().clone(memory_format=torch.contiguous_format) for name, value in model.state_dict().items()}, out)


if __name__ == "__main__":
    convert(sys.argv[1], sys.argv[2])
