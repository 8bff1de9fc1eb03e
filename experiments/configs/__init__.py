"""Named presets: one module per table or figure of the paper.

Each module gives `config(...)`, the `RunConfig` of one row, and
`rows(preset, seeds)`, every row of its table with the paper's (or the
authors') number beside it. `preset="paper"` is the paper's sizes and
lengths, `preset="tiny"` a run of seconds on small networks with the same
code paths (for tests and laptops); Figure 5 adds "authors" (the authors'
Fashion-MNIST command). Every row has a run id, used as its directory name.
"""

from experiments.configs import fig4, fig5, table1, table2
from experiments.configs.presets import Row, PRESETS, Preset, shrink

TABLES = {'table1': table1, 'table2': table2, 'fig4': fig4, 'fig5': fig5}

__all__ = ['Row', 'PRESETS', 'Preset', 'TABLES', 'shrink', 'fig4', 'fig5',
           'table1', 'table2']
