"""Human labels in their published formats → the design's truth.json.

`import_eth_groups(folder)` (ETH/UCY walking groups → `accompany`) and
`import_kpf(folder, mapping)` (MEVA/DIVA KPF activities → `meet`, `stop`, … through a label
map) return the truth document; `*_truth` return it with the time base and notes;
`write_truth` writes it atomically. `secinf truth import` is the command line.
"""

from .common import DEFAULT_TIME_ORIGIN, Imported, TimeBase, parse_time_origin, write_truth
from .eth_groups import eth_groups_truth, import_eth_groups
from .kpf import import_kpf, kpf_truth
from .label_map import MEVA_MAP, LabelMap, Rule, load_label_map, parse_label_map

FORMATS = ("eth-groups", "kpf")

__all__ = ["DEFAULT_TIME_ORIGIN", "FORMATS", "MEVA_MAP", "Imported", "LabelMap", "Rule",
           "TimeBase", "eth_groups_truth", "import_eth_groups", "import_kpf", "kpf_truth",
           "load_label_map", "parse_label_map", "parse_time_origin", "write_truth"]
