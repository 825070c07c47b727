import pytest
import torch
from safetensors import safe_open

from mirnet_hf import MIRNetConfig, MIRNetForImageRestoration, MIRNetModel
from mirnet_hf.modeling_mirnet import MIRNetBlurDownsample, charbonnier_loss


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("size", [(32, 32), (30, 21), (1, 1), (5, 3)])
def test_any_size_comes_back_at_its_size(version, size):
    features = 8 if version == "v1" else 16
    model = MIRNetForImageRestoration(
        MIRNetConfig(
            version=version, num_features=features, num_rrg=1, num_mrb=1, rrg_groups=None if version == "v1" else [2]
        )
    )
    with torch.no_grad():
        out = model(pixel_values=torch.rand(2, 3, *size)).reconstruction
    assert out.shape == (2, 3, *size)
    assert torch.isfinite(out).all()


def test_unaligned_input_equals_padding_then_cropping(tiny_config):
    model = MIRNetForImageRestoration(tiny_config).eval()
    image = torch.rand(1, 3, 30, 22)
    padded = torch.nn.functional.pad(image, (0, 2, 0, 2), mode="reflect")
    with torch.no_grad():
        direct = model(pixel_values=image).reconstruction
        manual = model(pixel_values=padded).reconstruction[..., :30, :22]
    torch.testing.assert_close(direct, manual, rtol=0, atol=0)


def test_loss_is_charbonnier_with_eps_1e_3(tiny_config):
    model = MIRNetForImageRestoration(tiny_config)
    image, target = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    out = model(pixel_values=image, labels=target)
    expected = torch.sqrt((out.reconstruction - target) ** 2 + 1e-6).mean()
    torch.testing.assert_close(out.loss, expected)
    assert charbonnier_loss(torch.zeros(3), torch.zeros(3)).item() == pytest.approx(1e-3)
    out.loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_no_labels_no_loss(tiny_config):
    out = MIRNetForImageRestoration(tiny_config)(pixel_values=torch.rand(1, 3, 8, 8))
    assert out.loss is None


def test_gradient_checkpointing_gives_the_same_gradients(tiny_config):
    model = MIRNetForImageRestoration(tiny_config)
    image, target = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    model(pixel_values=image, labels=target).loss.backward()
    plain = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.activation_checkpointing_enable()
    model.train()
    model(pixel_values=image, labels=target).loss.backward()
    for a, p in zip(plain, model.parameters()):
        torch.testing.assert_close(a, p.grad)


def test_features_and_hidden_states(tiny_config):
    model = MIRNetModel(tiny_config)
    out = model(torch.rand(1, 3, 18, 14), output_hidden_states=True)
    assert out.last_hidden_state.shape == (1, 8, 18, 14)
    assert len(out.hidden_states) == 1 + tiny_config.num_rrg
    restoration = MIRNetForImageRestoration(tiny_config)
    assert len(restoration(pixel_values=torch.rand(1, 3, 8, 8), output_hidden_states=True).hidden_states) == 2


def test_the_dau_activation_is_one_parameter_shared_by_every_dau():
    model = MIRNetForImageRestoration(MIRNetConfig(num_features=8, num_rrg=2, num_mrb=2))
    prelu_keys = [k for k in model.state_dict() if "attention_units" in k and k.endswith("act.weight")]
    assert prelu_keys == []
    assert model.mirnet.dau_activation.weight.numel() == 1
    image = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        before = model(pixel_values=image).reconstruction
        model.mirnet.dau_activation.weight.fill_(0.9)
        after = model(pixel_values=image).reconstruction
    assert not torch.equal(before, after)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_save_and_load_round_trip_gives_identical_outputs(tmp_path, version):
    config = MIRNetConfig(
        version=version, num_features=16, num_rrg=1, num_mrb=1, rrg_groups=None if version == "v1" else [2]
    )
    model = MIRNetForImageRestoration(config).eval()
    model.save_pretrained(tmp_path)
    files = {p.name for p in tmp_path.iterdir()}
    assert "model.safetensors" in files
    assert not any(name.endswith((".bin", ".pt", ".pth")) for name in files)
    with safe_open(tmp_path / "model.safetensors", "pt") as handle:
        assert not any(key.endswith("kernel") for key in handle.keys())  # the fixed blur is not stored
    reloaded = MIRNetForImageRestoration.from_pretrained(tmp_path).eval()
    # The non-persistent blur filter must be rebuilt, not left uninitialised.
    for module in reloaded.modules():
        if isinstance(module, MIRNetBlurDownsample):
            torch.testing.assert_close(module.kernel[0, 0].sum(), torch.tensor(1.0))
    image = torch.rand(1, 3, 24, 20)
    with torch.no_grad():
        torch.testing.assert_close(
            reloaded(pixel_values=image).reconstruction, model(pixel_values=image).reconstruction, rtol=0, atol=0
        )


@pytest.mark.parametrize(
    ("pixel_values", "error", "message"),
    [
        (torch.rand(3, 16, 16), ValueError, "(batch, 3, height, width)"),
        (torch.rand(1, 4, 16, 16), ValueError, "(1, 4, 16, 16)"),
        (torch.randint(0, 255, (1, 3, 8, 8), dtype=torch.uint8), TypeError, "torch.uint8"),
        (torch.full((1, 3, 8, 8), float("nan")), ValueError, "NaN"),
        (torch.tensor([[[[float("inf")]]]]).expand(1, 3, 4, 4), ValueError, "infinite"),
        (torch.rand(1, 3, 0, 8), ValueError, "empty"),
        ([[0.5]], TypeError, "list"),
    ],
)
def test_bad_pixel_values_give_clear_errors(tiny_config, pixel_values, error, message):
    model = MIRNetForImageRestoration(tiny_config)
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        model(pixel_values=pixel_values)


def test_labels_of_the_wrong_shape_are_refused(tiny_config):
    model = MIRNetForImageRestoration(tiny_config)
    with pytest.raises(ValueError, match="labels"):
        model(pixel_values=torch.rand(1, 3, 8, 8), labels=torch.rand(1, 3, 16, 16))


def test_the_input_values_are_checked_once_per_forward_pass(tiny_config, monkeypatch):
    model = MIRNetForImageRestoration(tiny_config)
    calls = []
    isfinite = torch.isfinite

    def counting(tensor):
        calls.append(tuple(tensor.shape))
        return isfinite(tensor)

    monkeypatch.setattr(torch, "isfinite", counting)
    with torch.no_grad():
        model(pixel_values=torch.rand(1, 3, 16, 16))
    assert len(calls) == 1  # a full pass over the input (and, on accelerators, a device sync) costs once only
