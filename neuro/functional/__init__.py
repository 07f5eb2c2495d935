"""The math floor: stateless forward/backward functions that layers, activations and losses call.

Each function takes arrays and hyperparameters and returns its output and a context (what its backward
needs); the backward takes the incoming gradient and that context. Nothing here holds parameters or state,
and the array module comes from the arguments, so one function serves NumPy, CuPy and the strict stand-in.
A device-specific kernel, where one pays, sits beside the NumPy version in the same file.
"""

from neuro.functional.activation import (
    leaky_relu,
    leaky_relu_backward,
    log_softmax,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    softmax,
    softmax_backward,
    tanh,
    tanh_backward,
)
from neuro.functional.conv import col2im_offsets, conv2d, conv2d_backward, im2col, paddings
from neuro.functional.dropout import dropout, dropout_backward, dropout_mask
from neuro.functional.linear import linear, linear_backward
from neuro.functional.loss import (
    sigmoid_binary_cross_entropy_backward,
    sigmoid_binary_cross_entropy_sum,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_sum,
)
from neuro.functional.normalization import batch_norm_backward, batch_norm_inference, batch_norm_train
from neuro.functional.pooling import (
    avg_pool2d,
    avg_pool2d_backward,
    global_avg_pool2d,
    global_avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
)
from neuro.functional.recurrent import embedding, embedding_backward

__all__ = [
    "avg_pool2d",
    "avg_pool2d_backward",
    "batch_norm_backward",
    "batch_norm_inference",
    "batch_norm_train",
    "col2im_offsets",
    "conv2d",
    "conv2d_backward",
    "dropout",
    "dropout_backward",
    "dropout_mask",
    "embedding",
    "embedding_backward",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    "im2col",
    "leaky_relu",
    "leaky_relu_backward",
    "linear",
    "linear_backward",
    "log_softmax",
    "max_pool2d",
    "max_pool2d_backward",
    "paddings",
    "relu",
    "relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "sigmoid_binary_cross_entropy_backward",
    "sigmoid_binary_cross_entropy_sum",
    "softmax",
    "softmax_backward",
    "softmax_cross_entropy_backward",
    "softmax_cross_entropy_sum",
    "tanh",
    "tanh_backward",
]
