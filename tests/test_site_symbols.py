r"""The notation tables, the symbols linked between math and code, the algorithm boxes, the family tree."""

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from sitegen import family, hooks, symbols  # noqa: E402
from sitegen.annotate import annotate  # noqa: E402
from sitegen.katex import render_math, render_tex  # noqa: E402

from annotated_opt.core.registry import REGISTRY  # noqa: E402

MODULE = r'''r"""
# Example

```algorithm
m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t  @ exp_avg.lerp_(grad
\theta_t = \theta_{t-1} - \eta\, m_t  @ param.add_(exp_avg
```

## Notation

| symbol | in the code | meaning |
|---|---|---|
| $\theta$ | `param` | the parameter |
| $m_t$ | `exp_avg` | the moment |
| $\beta_1, \beta_2$ | `beta1`, `beta2` | decays |
| $\eta$ | `lr` | the learning rate |
"""


def step(param, grad, state, lr, beta1, beta2):
    exp_avg = state["exp_avg"]
    exp_avg.lerp_(grad, 1 - beta1)
    param.add_(exp_avg, alpha=-lr)
'''


def notation() -> list[symbols.Symbol]:
    return symbols.module_symbols(annotate(MODULE))


def test_the_notation_table_pairs_symbols_with_code_names() -> None:
    by_key = {s.key: s.names for s in notation()}
    assert by_key == {"\\theta": ("param",), "m": ("exp_avg",), "\\beta_1": ("beta1",), "\\beta_2": ("beta2",),
                      "\\eta": ("lr",)}


def test_a_name_the_code_does_not_have_fails() -> None:
    symbols.check_symbols(notation(), MODULE)
    code_without_beta1 = MODULE.replace("lr, beta1, beta2)", "lr, b1, beta2)").replace("1 - beta1)", "1 - b1)")
    with pytest.raises(symbols.NotationError, match="names beta1,"):
        symbols.check_symbols(notation(), code_without_beta1)


def test_symbols_in_the_math_are_wrapped_with_their_code_link() -> None:
    tagged = symbols.tag_tex(r"\hat m_t = \beta_1 m_{t-1} + \textcolor{orange}{\eta} \text{m} \mathrm{m}", notation())
    assert tagged.count("sym=m}") == 2
    assert r"\text{m}" in tagged and r"\mathrm{m}" in tagged
    assert "{\\htmlData{sym=beta-1}{\\beta_1}}" in tagged
    assert "\\textcolor{orange}{{\\htmlData{sym=eta}{\\eta}}}" in tagged
    # The tagged formula renders, and each symbol's box carries its link.
    rendered = render_tex(tagged, True)
    assert rendered.count('data-sym="m"') == 2 and 'data-sym="beta-1"' in rendered


def test_an_unlisted_letter_and_a_name_inside_a_word_are_left_alone() -> None:
    assert symbols.tag_tex(r"x + \operatorname*{arg\,max} y", notation()) == r"x + \operatorname*{arg\,max} y"


def test_the_page_keeps_the_authors_tex_for_screen_readers() -> None:
    html = render_math('<span class="arithmatex">\\(m_t\\)</span>', lambda tex: symbols.tag_tex(tex, notation()))
    assert 'data-sym="m"' in html
    assert ">m_t</annotation>" in html


def test_code_names_and_state_keys_get_the_same_link() -> None:
    html = ('<span class="n">exp_avg</span><span class="s2">&quot;exp_avg&quot;</span>'
            '<span class="n">exp_avg_sq</span><code>lr</code><code>lr2</code>')
    tagged = symbols.tag_code(html, notation())
    assert tagged.count('data-sym="m"') == 2
    assert '<span class="n">exp_avg_sq</span>' in tagged
    assert '<code data-sym="eta">lr</code><code>lr2</code>' in tagged


def test_the_algorithm_box_links_each_line_to_the_row_of_its_code() -> None:
    module = annotate(MODULE)
    notes = module.sections[0].notes[0]
    box = symbols.algorithm_boxes(notes, module)
    assert box.count('class="ao-algorithm-line" href="#step"') == 2
    lines = MODULE.splitlines()
    for piece in ("exp_avg.lerp_(grad", "param.add_(exp_avg"):
        number = next(n for n, line in enumerate(lines, 1) if piece in line and "@" not in line)
        assert f"line {number}<" in box
    with pytest.raises(symbols.NotationError, match="nowhere_in_the_code"):
        symbols.algorithm_boxes(notes.replace("param.add_(exp_avg", "nowhere_in_the_code"), module)


def test_every_optimizer_page_has_a_notation_and_an_algorithm_box() -> None:
    """The link between math and code is part of every optimizer's page."""
    hooks.on_config(SimpleNamespace(nav=[]))
    for info in REGISTRY.values():
        page = hooks.module_for(info.module)
        path = page.path
        source = path.read_text()
        module = annotate(source)
        notation = symbols.module_symbols(module)
        assert notation, f"{path.name} has no ## Notation table"
        symbols.check_symbols(notation, source)
        assert any("```algorithm" in block for block in module.notes), f"{path.name} has no algorithm box"
        for block in module.notes:
            symbols.algorithm_boxes(block, module, hooks.code_elsewhere(page))


def test_the_family_tree_tells_idea_lineage_from_code_inheritance() -> None:
    infos = list(REGISTRY.values())
    by_name = {info.name: info for info in infos}
    assert family.code_parent(by_name["AdamW"], infos).name == "AMSGrad"
    assert by_name["AdamW"].parent == "Adam"
    assert family.code_parent(by_name["RMSprop"], infos) is None
    svg = family.family_tree_svg(infos, lambda info: f"{info.key}/")
    assert svg.count("<a href=") == len(infos)
    assert "AdamW's code extends AMSGrad's" in svg
    nodes = family.layout(infos)
    for info in infos:
        if info.parent in nodes:
            assert nodes[info.name].column == nodes[info.parent].column + 1
