/*
 * fp_report.h: the validation report a statistician reads, built from the
 * evaluation results of each centre.
 *
 * Input (RESULTS): a folder holding manifest.json, or that file's path:
 *   {"study": "...", "model_hash": "...", "horizon": 730, "tau": 1825,
 *    "columns": {"time": "time", "event": "event", "risk": "COL",   (required)
 *                "label": "COL", "prob": "COL",                      (binary outcome, optional)
 *                "arm": "COL", "recommended": "COL", "propensity": "C0,C1,..."}, (optional)
 *    "centres": [{"id": "H01", "csv": "H01.csv", "snapshot_hash": "...",
 *                 "snapshot_date": "2026-10-01"}, ...]}
 * CSV paths are relative to the manifest's folder; risk is the predicted
 * probability of an event by the horizon.
 *
 * Output (DIR, created): report.html (self-contained, inline SVG figures with
 * ids fig-roc, fig-calibration, fig-km-risk, fig-forest, fig-benefit),
 * report.json (every number), performance.csv (per centre and pooled) and
 * table1.csv (per centre). Each file is written atomically.
 */
#ifndef FP_REPORT_H
#define FP_REPORT_H

#include "fp_status.h"

#define FP_REPORT_MAX_CENTRES 64

enum fp_status fp_report_build(const char *results, const char *out_dir);

#endif
