import pytest
import torch

from ssl_ser.job import OptimConfig, ScheduleConfig
from ssl_ser.train.optim import build_optimizer, build_scheduler


def _rates(schedule: ScheduleConfig, optim: OptimConfig, epochs: int) -> list[float]:
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(1))], optim)
    sched = build_scheduler(opt, schedule, epochs)
    rates = []
    for _ in range(epochs):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


def test_li_et_al_schedule_divides_by_ten_at_epochs_21_31_41() -> None:
    optim = OptimConfig(name="sgd", lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
    rates = _rates(ScheduleConfig(name="multistep", milestones=[21, 31, 41]), optim, 45)
    assert rates[19] == pytest.approx(0.05) and rates[20] == pytest.approx(0.005)  # epoch 20 -> 21
    assert rates[30] == pytest.approx(0.0005) and rates[40] == pytest.approx(0.00005)
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(1))], optim)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"] is True


def test_lssed_step_schedule_and_adadelta() -> None:
    rates = _rates(ScheduleConfig(name="step", step_size=20, gamma=0.1), OptimConfig(name="sgd", lr=0.01), 41)
    assert rates[19] == pytest.approx(0.01) and rates[20] == pytest.approx(0.001)
    assert rates[40] == pytest.approx(0.0001)
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(1))], OptimConfig(name="adadelta", lr=1.0))
    assert isinstance(opt, torch.optim.Adadelta)
