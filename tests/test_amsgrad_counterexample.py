"""The AMSGrad counter-example: Adam ends near the worst point, AMSGrad near the best."""

from annotated_opt.adam import Adam
from annotated_opt.amsgrad import AMSGrad
from annotated_opt.toys import counterexample as adam_counterexample


def test_gradients_favour_the_lower_end() -> None:
    period = [adam_counterexample.gradient(t) for t in range(1, adam_counterexample.PERIOD + 1)]
    assert period.count(1010.0) == 1 and period.count(-10.0) == 100
    # The loss sum_t f_t(x) = x * sum_t g_t grows with x: the optimum of [-1, 1] is -1.
    assert sum(period) == 10.0


def test_adam_drifts_to_the_wrong_end_and_amsgrad_does_not() -> None:
    adam = adam_counterexample.run(Adam, steps=3000, lr=1.0)
    amsgrad = adam_counterexample.run(AMSGrad, steps=3000, lr=1.0)
    assert adam[-1] > 0.9
    assert amsgrad[-1] < -0.7
    assert all(-1.0 <= x <= 1.0 for x in adam + amsgrad)
