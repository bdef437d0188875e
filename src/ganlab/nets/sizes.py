"""The image sizes the DCGAN networks take, without torch: the networks and the config check
(``ganlab.validate``, before anything is imported) share these."""

from __future__ import annotations

NOT_A_DCGAN_SIZE = "is not supported by DCGAN; use b·2^k with 4 ≤ b ≤ 7, k ≥ 1 (e.g. 28, 32, 64, 128)"


def pyramid(image_size: int) -> tuple[int, int]:
    """(base size, number of ×2 stages) such that base · 2**stages == image_size, 4 ≤ base ≤ 7."""
    base, stages = image_size, 0
    while base > 7 and base % 2 == 0:
        base, stages = base // 2, stages + 1
    if not 4 <= base <= 7 or stages < 1:
        raise ValueError(f"image_size={image_size} {NOT_A_DCGAN_SIZE}")
    return base, stages


def dcgan_size_problem(image_size: object) -> str | None:
    """What is wrong with ``image_size`` for the DCGAN networks, or None (a non-integer is the type
    check's to name)."""
    if not isinstance(image_size, int) or isinstance(image_size, bool):
        return None
    try:
        pyramid(image_size)
    except ValueError:
        return NOT_A_DCGAN_SIZE
    return None
