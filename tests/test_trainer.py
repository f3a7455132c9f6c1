"""The training loop's model selection and step-level validation (train/trainer.py)."""
import numpy as np
import pytest
import torch

from conftest import compose_cfg, tiny_capsnet
from src.dataset import make_eval_loader, make_loader
from train.trainer import fit, is_better, predict_scores


def test_selection_prefers_higher_accuracy_lower_loss_and_breaks_ties_on_macro_f1():
    a = {"accuracy": 70.0, "macro_f1": 60.0, "loss": 0.30}
    b = {"accuracy": 70.0, "macro_f1": 65.0, "loss": 0.35}
    assert is_better(a, None, "accuracy")
    assert is_better(b, a, "accuracy") and not is_better(a, b, "accuracy")
    assert is_better(a, b, "loss") and not is_better(b, a, "loss")
    assert not is_better(dict(a), a, "accuracy")  # an equal result keeps the earlier checkpoint


@pytest.mark.slow
def test_eval_every_steps_validates_inside_epochs_and_reports_the_best_step():
    cfg = compose_cfg("mams-atsa", overrides=["train.epochs=2", "train.batch_size=8", "train.eval_every_steps=2",
                                              "train.bucket_by_length=false", "model.capsule_size=8",
                                              "model.dropout=0.0"])
    model, data = tiny_capsnet(cfg)
    loader = make_loader(data, 8, shuffle=True, seed=0)
    saved = []
    history, best, timing = fit(model, loader, make_loader(data, 16), cfg.train, torch.device("cpu"),
                                lambda epoch, val: saved.append((epoch, val["step"])), log=lambda *_: None)
    # 6 steps an epoch: validations after steps 2 and 4 inside each epoch, plus one at each epoch's end
    assert timing["validations"] == 6 and timing["steps"] == 12
    assert [h["step"] for h in history] == [6, 12]
    assert saved and saved[-1][1] == best["step"] and best["step"] in {2, 4, 6, 8, 10, 12}


def test_length_sorted_evaluation_batches_give_scores_and_labels_in_dataset_order():
    cfg = compose_cfg("mams-atsa", overrides=["model.capsule_size=8", "model.dropout=0.0"])
    model, data = tiny_capsnet(cfg)
    loader = make_eval_loader(data, 8)
    first_batch = loader.batch_sampler[0]
    assert first_batch != list(range(8))                      # the batches really are reordered
    assert np.all(np.diff(data.lengths()[loader.batch_sampler.order.numpy()]) >= 0)
    sorted_scores, sorted_labels = predict_scores(model, loader, torch.device("cpu"))
    file_scores, file_labels = predict_scores(model, make_loader(data, 8), torch.device("cpu"))
    assert torch.equal(sorted_labels, file_labels)
    torch.testing.assert_close(sorted_scores, file_scores, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_train_loss_points_average_every_step_since_the_previous_point_across_epochs():
    cfg = compose_cfg("mams-atsa", overrides=["train.epochs=2", "train.batch_size=8", "train.log_every=4",
                                              "train.bucket_by_length=false", "model.capsule_size=8"])
    model, data = tiny_capsnet(cfg)               # 48 rows: 6 steps an epoch, points at steps 4, 8, 12
    losses, loss = [], model.loss

    def recording_loss(scores, labels):
        value = loss(scores, labels)
        losses.append(float(value.detach()))
        return value
    model.loss = recording_loss

    class Writer:
        points = {}

        def add_scalar(self, tag, value, step):
            if tag == "train/loss":
                self.points[step] = value
    writer = Writer()
    fit(model, make_loader(data, 8, shuffle=True, seed=0), make_loader(data, 16), cfg.train, torch.device("cpu"),
        lambda *_: None, log=lambda *_: None, writer=writer)
    train_losses = [value for k, value in enumerate(losses) if k not in {6, 13}]  # minus the 2 validations
    assert len(train_losses) == 12
    expected = {4: np.mean(train_losses[0:4]), 8: np.mean(train_losses[4:8]), 12: np.mean(train_losses[8:12])}
    assert writer.points.keys() == expected.keys()
    for step, value in expected.items():
        assert abs(writer.points[step] - value) < 1e-6, step
