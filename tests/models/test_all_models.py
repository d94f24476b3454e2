"""Behaviour every registered model shares (tiny configurations, CPU)."""

from __future__ import annotations

import torch

from ssl_ser.models import MODELS, build_model

NUM_CLASSES = 4  # what the tiny_model fixture builds


def test_every_registered_model_is_tested(tiny) -> None:
    assert set(MODELS.names()) == set(tiny)


def test_shapes_for_a_padded_batch(model_name, tiny_model, tiny, batch) -> None:
    model = tiny_model(model_name).eval()
    frames = tiny[model_name]["frames"]
    x, lengths = batch(model_name, [frames, frames - 7, frames // 2])
    out = model(x, lengths)
    assert out["embedding"].shape == (3, model.embedding_dim)
    assert out["logits"].shape == (3, NUM_CLASSES)
    assert torch.equal(model.embed(x, lengths), out["embedding"])
    for value in out.values():
        assert torch.isfinite(value).all()


def test_padding_does_not_influence_outputs(model_name, tiny_model, tiny, batch) -> None:
    """Each row of a padded batch (padding filled with large noise) gives what it gives alone."""
    model = tiny_model(model_name).eval()
    frames = tiny[model_name]["frames"]
    lengths = [frames, frames - 5, frames // 2 + 1]
    x, lens = batch(model_name, lengths, garbage=True)
    with torch.no_grad():
        together = model(x, lens)
        for row, n in enumerate(lengths):
            alone = model(x[row : row + 1, :, :n], lens[row : row + 1])
            for key, value in alone.items():
                joint = together[key][row : row + 1]
                if key == "recon":
                    joint = joint[..., :n]
                elif key == "latent":
                    joint = joint[:, :n]
                torch.testing.assert_close(joint, value, atol=1e-4, rtol=1e-4, msg=f"{model_name} {key} row {row}")


def test_gradients_reach_every_parameter(model_name, tiny_model, tiny, batch, loss_fn) -> None:
    model = tiny_model(model_name).train()
    frames = tiny[model_name]["frames"]
    x, lengths = batch(model_name, [frames, frames - 3, frames // 2, frames])
    loss_fn(model(x, lengths), x).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, f"{model_name}: {name} got no gradient"
        assert param.grad.abs().sum() > 0, f"{model_name}: {name} got a zero gradient"


def test_overfits_a_handful_of_batches(model_name, tiny_model, tiny, batch, loss_fn) -> None:
    """4 batches of 4 examples with fixed random labels, 120 Adam steps: the loss falls well below its start."""
    model = tiny_model(model_name).train()
    frames = tiny[model_name]["frames"]
    gen = torch.Generator().manual_seed(3)
    data = []
    for i in range(4):
        x, lengths = batch(model_name, [frames, frames - 2, frames - 4, frames], seed=10 + i)
        targets = {"logits": torch.randint(0, NUM_CLASSES, (4,), generator=gen),
                   "latent_emotion_logits": None, "cluster_logits": torch.randint(0, 10, (4,), generator=gen),
                   "attributes": torch.rand(4, 3, generator=gen)}
        targets["latent_emotion_logits"] = targets["logits"]
        data.append((x, lengths, targets))
    # The DAAE's domain heads are adversarial, so its training loss is classifier + reconstruction
    # + latent emotion head (the parts that are minimised).
    keys = ("logits", "recon", "latent_emotion_logits", "cluster_logits", "attributes")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def epoch_loss() -> float:  # the training loss (train mode: batch-norm uses batch statistics)
        with torch.no_grad():
            return sum(float(loss_fn(model(x, n), x, t, keys)) for x, n, t in data) / len(data)

    start = epoch_loss()
    for _ in range(30):
        for x, lengths, targets in data:
            optimizer.zero_grad()
            loss_fn(model(x, lengths), x, targets, keys).backward()
            optimizer.step()
    end = epoch_loss()
    assert end < 0.3 * start, f"{model_name}: loss {start:.3f} -> {end:.3f}"


def test_reset_classifier_changes_only_the_final_layer(model_name, tiny_model, tiny, batch) -> None:
    model = tiny_model(model_name).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, lengths = batch(model_name, [tiny[model_name]["frames"]] * 2)
    model.reset_classifier(7)
    out = model(x, lengths)
    assert out["logits"].shape == (2, 7) and model.num_classes == 7
    after = model.state_dict()
    changed = {k for k in after if k not in before or after[k].shape != before[k].shape
               or not torch.equal(after[k], before[k])}
    assert changed and all(k.startswith(model.classifier_prefix) for k in changed)


def test_checkpoint_loads_all_but_the_classifier(model_name, tiny_model, tiny) -> None:
    source = tiny_model(model_name)
    spec = tiny[model_name]
    target = build_model(model_name, in_features=spec["features"], num_classes=9, **spec["options"])
    state = {k: v for k, v in source.state_dict().items() if not k.startswith(source.classifier_prefix)}
    result = target.load_state_dict(state, strict=False)
    assert result.unexpected_keys == []
    assert result.missing_keys and all(k.startswith(target.classifier_prefix) for k in result.missing_keys)
    assert any(k.startswith(source.classifier_prefix) for k in source.state_dict())
