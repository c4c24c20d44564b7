import pytest
import torch

from rawdrift.models import ResNet18, build_model, load_torchvision_weights

# torchvision.models.resnet18().state_dict(), written out by hand from torchvision's
# architecture (name: shape), in torchvision's order. BN entries expand to
# weight, bias, running_mean, running_var, num_batches_tracked.
TORCHVISION_RESNET18 = """
conv1.weight 64,3,7,7
bn1 64
layer1.0.conv1.weight 64,64,3,3
layer1.0.bn1 64
layer1.0.conv2.weight 64,64,3,3
layer1.0.bn2 64
layer1.1.conv1.weight 64,64,3,3
layer1.1.bn1 64
layer1.1.conv2.weight 64,64,3,3
layer1.1.bn2 64
layer2.0.conv1.weight 128,64,3,3
layer2.0.bn1 128
layer2.0.conv2.weight 128,128,3,3
layer2.0.bn2 128
layer2.0.downsample.0.weight 128,64,1,1
layer2.0.downsample.1 128
layer2.1.conv1.weight 128,128,3,3
layer2.1.bn1 128
layer2.1.conv2.weight 128,128,3,3
layer2.1.bn2 128
layer3.0.conv1.weight 256,128,3,3
layer3.0.bn1 256
layer3.0.conv2.weight 256,256,3,3
layer3.0.bn2 256
layer3.0.downsample.0.weight 256,128,1,1
layer3.0.downsample.1 256
layer3.1.conv1.weight 256,256,3,3
layer3.1.bn1 256
layer3.1.conv2.weight 256,256,3,3
layer3.1.bn2 256
layer4.0.conv1.weight 512,256,3,3
layer4.0.bn1 512
layer4.0.conv2.weight 512,512,3,3
layer4.0.bn2 512
layer4.0.downsample.0.weight 512,256,1,1
layer4.0.downsample.1 512
layer4.1.conv1.weight 512,512,3,3
layer4.1.bn1 512
layer4.1.conv2.weight 512,512,3,3
layer4.1.bn2 512
fc.weight 1000,512
fc.bias 1000
"""


def expected_keys(num_classes=1000):
    out = []
    for line in TORCHVISION_RESNET18.strip().splitlines():
        name, shape = line.split()
        shape = tuple(int(s) for s in shape.split(","))
        if name.startswith("fc."):
            shape = (num_classes,) + shape[1:]
        if name.endswith(".weight") or name.endswith(".bias"):
            out.append((name, shape))
        else:  # a BatchNorm2d
            for p in ("weight", "bias", "running_mean", "running_var"):
                out.append((f"{name}.{p}", shape))
            out.append((f"{name}.num_batches_tracked", ()))
    return out


@pytest.mark.parametrize("num_classes", [1000, 9])
def test_state_dict_matches_torchvision(num_classes):
    sd = ResNet18(num_classes=num_classes).state_dict()
    got = [(k, tuple(v.shape)) for k, v in sd.items()]
    assert got == expected_keys(num_classes)
    assert len(got) == 122


def test_default_classes_is_nine():
    assert ResNet18().fc.out_features == 9


@pytest.mark.parametrize("size", [32, 48, 64, 96])
def test_output_shape(size):
    model = build_model("classification", num_classes=5).eval()
    with torch.no_grad():
        y = model(torch.rand(2, 3, size, size))
    assert y.shape == (2, 5)
    assert torch.isfinite(y).all()


def test_non_square_input():
    assert ResNet18().eval()(torch.rand(1, 3, 32, 64)).shape == (1, 9)


def test_bad_input_channels():
    with pytest.raises(ValueError, match="x: expected 3 channel"):
        ResNet18()(torch.rand(1, 1, 32, 32))


def test_bad_num_classes():
    with pytest.raises(ValueError, match="num_classes"):
        ResNet18(num_classes=0)


def test_build_model_bad_task():
    with pytest.raises(ValueError, match="task: expected one of"):
        build_model("detection")


def test_torchvision_load_or_clear_error():
    model = ResNet18(num_classes=9)
    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="needs torchvision"):
            load_torchvision_weights(model)
        pytest.skip("torchvision not installed: checked the ImportError message only")
    try:
        load_torchvision_weights(model)
    except Exception as err:  # weights not downloadable offline
        pytest.skip(f"torchvision weights unavailable: {err}")
    assert model.fc.out_features == 9
    assert model.conv1.weight.abs().sum() > 0
