import pytest
import torch

from snakeid_desktop.model import MobileNetV2, build_model, make_divisible


def test_make_divisible_rounds_to_multiple_of_eight_without_losing_ten_percent():
    assert make_divisible(32 * 0.35) == 16
    assert make_divisible(1280) == 1280
    assert make_divisible(20) == 24  # 16 would lose more than 10%


def test_forward_shape_and_parameter_count_match_the_paper():
    model = MobileNetV2(num_classes=1000).eval()
    with torch.inference_mode():
        out = model(torch.zeros(2, 3, 224, 224))
    assert out.shape == (2, 1000)
    n_params = sum(p.numel() for p in model.parameters())
    assert 3_400_000 < n_params < 3_600_000  # the paper: 3.4M


def test_blocks_have_linear_bottleneck_and_residual_only_when_shapes_match():
    model = MobileNetV2(num_classes=10)
    block = model.features[3]  # 24 -> 24, stride 1, expansion 6
    assert block.use_res_connect
    assert isinstance(block.conv[-1], torch.nn.BatchNorm2d)  # no ReLU after the projection
    depthwise = block.conv[1][0]
    assert depthwise.groups == depthwise.in_channels == 144
    assert not model.features[2].use_res_connect  # 16 -> 24, stride 2


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("resnet50", num_classes=3)


@pytest.mark.parametrize("width_mult", [1.0, 0.35])
def test_state_dict_and_outputs_match_torchvision(width_mult):
    tv_models = pytest.importorskip("torchvision.models")
    torch.manual_seed(0)
    reference = tv_models.mobilenet_v2(weights=None, num_classes=20, width_mult=width_mult).eval()
    ours = MobileNetV2(num_classes=20, width_mult=width_mult).eval()
    ref_state = reference.state_dict()
    assert list(ours.state_dict().keys()) == list(ref_state.keys())
    # Randomise BN statistics too, so the comparison covers every tensor.
    with torch.no_grad():
        for name, tensor in ref_state.items():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand_like(tensor) + 0.5 if "running_var" in name else torch.randn_like(tensor) * 0.1)
    ours.load_state_dict(ref_state)
    x = torch.randn(2, 3, 160, 160)
    with torch.inference_mode():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-4, atol=1e-5)
