"""Old name of :mod:`snakeid_desktop.training.efficientnet_lite`, kept so existing imports keep working."""

from .efficientnet_lite import (  # noqa: F401
    BN_EPS,
    LITE0_MEMBER,
    LITE0_REQUIREMENT,
    LITE0_SHA256,
    LITE0_STAGES,
    LITE0_WHEEL,
    Conv2dSame,
    Lite0,
    MBConv,
    block_count,
    build_lite0,
    conv_bn,
    convert_state,
    imagenet_state,
    key_map,
)
