r"""
# Kronecker-factored preconditioning: the shared arithmetic

[Shampoo](../shampoo.md), [SOAP](../soap.md) and [GaLore](../galore.md) treat a weight matrix as a
matrix rather than as a list of numbers. Two operations do the work for all of them, for a tensor
$G$ of any number of dimensions (a matrix has two, a convolution kernel four):

* the **statistic of one dimension** $k$: contract $G$ with itself over every other dimension. For a
  matrix this is $G G^\top$ ($k = 0$, an $n \times n$ matrix) or $G^\top G$ ($k = 1$, $m \times m$);
* **multiplying every dimension by a matrix**: $G \times_0 A_0 \times_1 A_1 \cdots$, which for a matrix
  is $A_0^\top G A_1$. With $A_k$ the eigenvectors of the statistics this rotates $G$ into their
  eigenbasis; with their transposes it rotates back; with inverse roots it preconditions.

Why a Kronecker product of two small matrices stands in for one impossible large one: the full-matrix
preconditioner of AdaGrad for an $n \times m$ matrix is $(\sum_t \mathrm{vec}(G_t)\mathrm{vec}(G_t)^\top)^{-1/2}$,
an $nm \times nm$ matrix, $10^{12}$ numbers for $1024 \times 1024$. Shampoo's approximation
$L^{1/2} \otimes R^{1/2} \succeq$ that sum (up to a factor of the rank, Gupta et al. 2018, Lemma 8)
keeps an $n \times n$ and an $m \times m$ matrix, two million numbers, and applying it costs two
matrix products instead of one of size $nm$.
"""

from collections.abc import Sequence
from itertools import chain

import torch


def dimension_statistic(grad: torch.Tensor, dim: int) -> torch.Tensor:
    r"""
    $G_{(k)} G_{(k)}^\top$, where $G_{(k)}$ is $G$ unfolded so that dimension $k$ indexes the rows:
    `tensordot` contracts every other dimension of $G$ with the same dimension of $G$ in one call.
    """
    others = [*chain(range(dim), range(dim + 1, grad.ndim))]
    return torch.tensordot(grad, grad, dims=[others, others])


def multiply_dimensions(tensor: torch.Tensor, matrices: Sequence[torch.Tensor | None],
                        transpose: bool = False) -> torch.Tensor:
    r"""
    $T \times_0 A_0 \times_1 A_1 \cdots$: dimension $k$ of `tensor` is multiplied by `matrices[k]`,
    by $A_k^\top$ from the left in the matrix case ($A_k$ itself with `transpose=True`). `None` leaves a
    dimension as it is (a dimension too large to precondition).

    Each `tensordot` contracts dimension $0$ and appends the result as the last dimension, so after
    one pass over all dimensions they are back in their order; a dimension left alone is rotated to
    the end by a permutation, to keep the cycle.
    """
    contract = 1 if transpose else 0
    for matrix in matrices:
        if matrix is None:
            tensor = tensor.permute(*range(1, tensor.ndim), 0)
        else:
            tensor = torch.tensordot(tensor, matrix, dims=[[0], [contract]])
    return tensor


def working_dtype(tensor: torch.Tensor) -> torch.dtype:
    r"""
    The dtype in which to run an eigendecomposition, a QR or an SVD: `float32` for half precisions
    (LAPACK has no `bfloat16` or `float16` routines, and their 8 or 11 bits of mantissa would not
    resolve the eigenvalues anyway), the tensor's own dtype otherwise.
    """
    return torch.promote_types(tensor.dtype, torch.float32)


def indexed(state: dict, name: str, count: int) -> list[torch.Tensor | None]:
    r"""
    The matrices `name_0`, `name_1`, ... of a parameter's state, `None` where one is absent. They are
    kept as separate entries rather than as a list, so that every tool that walks a state dict
    (checkpoints, dtype casts, master weights, the verification) sees plain tensors.
    """
    return [state.get(f"{name}_{index}") for index in range(count)]


def store_indexed(state: dict, name: str, matrices: Sequence[torch.Tensor | None]) -> None:
    r"""Store `matrices` as `name_0`, `name_1`, ...; a `None` stores nothing."""
    for index, matrix in enumerate(matrices):
        if matrix is not None:
            state[f"{name}_{index}"] = matrix
