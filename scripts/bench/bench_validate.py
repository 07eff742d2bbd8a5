#!/usr/bin/python3
# bench_validate.py: scikit-learn's side of scripts/bench/bench_validate.sh
# (Debian python3-sklearn). scikit-learn has no DeLong variance: this times
# roc_auc_score alone, so the ratio flatters scikit-learn.
#   /usr/bin/python3 bench_validate.py FILE
import sys
import time

import numpy as np
from sklearn.metrics import roc_auc_score

d = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1)
t0 = time.perf_counter()
auc = roc_auc_score(d[:, 0], d[:, 1])
print(f"sklearn_roc_auc_score {time.perf_counter() - t0:.4f} auc={auc:.15g}")
