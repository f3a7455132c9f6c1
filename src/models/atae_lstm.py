"""ATAE-LSTM (Wang et al. 2016, "Attention-based LSTM for Aspect-level Sentiment Classification"):
AT-LSTM (at_lstm.py) with the aspect vector also appended to every input word, so the LSTM reads
[w_i ; v_a] and its states carry the aspect:

  H = LSTM([w_1 ; v_a] .. [w_N ; v_a]),   then AT-LSTM's attention and output layer unchanged.

Config, hyper-parameters and deviations are AT-LSTM's (see at_lstm.py); with the aspect in the
inputs, the model is aspect-aware even with `aspect_attention: paper`.
"""
import torch

from .at_lstm import ATLSTM
from .base import register


@register("atae-lstm")
class ATAELSTM(ATLSTM):
    tasks = ("atsa", "acsa")

    def encoder_input_size(self, word_size, aspect_size):
        return word_size + aspect_size

    def encoder_inputs(self, words, aspect):
        return torch.cat([words, aspect.unsqueeze(1).expand(-1, words.size(1), -1)], dim=-1)
