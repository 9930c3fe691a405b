"""Plain, independent implementations written straight from the papers' equations, for the harness."""


def params_with_grads(optimizer):
    """(group, parameter, gradient to descend, state) for each parameter with a gradient; `maximize` negates it."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.grad is not None:
                yield group, p, (-p.grad if group.get("maximize") else p.grad), optimizer.state[p]
