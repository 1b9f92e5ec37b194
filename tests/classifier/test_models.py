import pytest
import torch

from classifier.checkpoint import Checkpoint, save_checkpoint
from classifier.data import Preprocessing
from classifier.models import ArchitectureConfig, build_model, load_encoder_weights
from classifier.schema import resolve_schema

SMALL = (8, 16, 32)


@pytest.mark.parametrize("channels", [1, 3])
def test_compact_outputs_concentrations_in_range(channels):
    model = build_model(ArchitectureConfig(channels=channels, n_outputs=5, widths=SMALL)).eval()
    alpha = model(torch.randn(4, channels, 32, 32))
    assert alpha.shape == (4, 5)
    assert torch.all(alpha > 1) and torch.all(alpha < 101)


def test_timm_backbone_with_dirichlet_head():
    model = build_model(ArchitectureConfig(name="efficientnet_b0", channels=1, n_outputs=7)).eval()
    assert model.dropout_only_in_head
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 7)


def test_mc_dropout_varies_head_but_keeps_batchnorm_frozen():
    model = build_model(ArchitectureConfig(n_outputs=5, widths=SMALL, dropout=0.5))
    model.enable_mc_dropout()
    images = torch.randn(3, 3, 32, 32)
    assert not model.encoder.training
    assert torch.equal(model.encoder(images), model.encoder(images))
    assert not torch.equal(model(images), model(images))
    model.eval()
    assert torch.equal(model(images), model(images))


def test_freezing_keeps_only_the_last_blocks_trainable():
    model = build_model(ArchitectureConfig(n_outputs=5, widths=SMALL))
    model.freeze_encoder_except_last(1)
    blocks = model.encoder_blocks()
    assert all(p.requires_grad for p in blocks[-1].parameters())
    assert not any(p.requires_grad for b in blocks[:-1] for p in b.parameters())
    assert all(p.requires_grad for p in model.head.parameters())


def test_encoder_weights_load_from_a_checkpoint_and_adapt_colour_to_greyscale(tmp_path):
    colour = build_model(ArchitectureConfig(channels=3, n_outputs=37, widths=SMALL))
    path = save_checkpoint(Checkpoint(schema=resolve_schema("gz2"), architecture=colour.config,
                                      preprocessing=Preprocessing(), model_state=colour.state_dict()), tmp_path / "c.pt")
    grey = build_model(ArchitectureConfig(channels=1, n_outputs=2, widths=SMALL))
    load_encoder_weights(grey, path)
    first = "0.0.weight"
    expected = colour.encoder.state_dict()[first].sum(dim=1, keepdim=True)
    assert torch.allclose(grey.encoder.state_dict()[first], expected)
    assert torch.equal(grey.encoder.state_dict()["2.0.weight"], colour.encoder.state_dict()["2.0.weight"])


def test_loading_weights_of_another_architecture_fails_clearly(tmp_path):
    other = build_model(ArchitectureConfig(name="efficientnet_b0", n_outputs=2))
    torch.save(other.encoder.state_dict(), tmp_path / "effnet.pt")
    with pytest.raises(ValueError, match="no encoder weights match"):
        load_encoder_weights(build_model(ArchitectureConfig(n_outputs=2, widths=SMALL)), tmp_path / "effnet.pt")
