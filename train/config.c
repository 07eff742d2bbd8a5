/*
 * config.c: the "train" configuration schema (fp_site_train.h): every key of
 * `fedpath train --config site.ini`, its default, range and help line. The
 * [site] and [log] keys repeat the site schema's so that one site file
 * serves every command.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "fp_site_train.h"
#include "fp_train.h"

#define K(sec, name, type, field, def, lo, hi, choices, help) \
	{sec, name, type, offsetof(struct fp_train_config, field), def, lo, hi, choices, help}

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const label_sources[] = {"truth", "csv", NULL};
static const char *const optimizers[] = {"adamw", "sgd", NULL};
static const char *const backends[] = {"cpu", "cuda", NULL};

static const struct fp_config_key keys[] = {
	K("site", "id", FP_CFG_STRING, site_id, "", 0, 0, NULL,
	  "this hospital's site id as on its certificate (letters, digits, '-' and '_')"),
	K("site", "data_dir", FP_CFG_STRING, data_dir, "data", 0, 0, NULL,
	  "folder holding the site's tile caches and tables; relative paths below start here"),
	K("log", "level", FP_CFG_ENUM, log_level, "info", 0, 0, log_levels, "lowest level written to the log"),
	K("log", "json", FP_CFG_BOOL, log_json, "false", 0, 0, NULL, "write JSON lines instead of human-readable lines"),
	K("log", "file", FP_CFG_STRING, log_file, "", 0, 0, NULL, "append the log to this file (empty: standard error)"),

	K("data", "caches", FP_CFG_STRING, caches, "caches", 0, 0, NULL,
	  "folder of tile caches (*.h5 from 'fedpath tile', with its manifest.jsonl)"),
	K("data", "labels", FP_CFG_ENUM, labels, "truth", 0, 0, label_sources,
	  "tile labels: truth (a phantom cohort's class maps) or csv (label_csv, docs/TRAINING.md)"),
	K("data", "truth_dir", FP_CFG_STRING, truth_dir, "truth", 0, 0, NULL,
	  "phantom cohort truth folder (slides.csv, classmaps/) when labels = truth"),
	K("data", "label_csv", FP_CFG_STRING, label_csv, "labels.csv", 0, 0, NULL,
	  "per-tile label table when labels = csv: slide_uid,x,y,label|consensus,patient_id"),
	K("data", "val_fraction", FP_CFG_DOUBLE, val_fraction, "0.2", 0, 0.9, NULL,
	  "share of patients held out for validation (whole patients, never single tiles)"),
	K("data", "min_label_share", FP_CFG_DOUBLE, min_label_share, "0.5", 0, 1, NULL,
	  "a tile is used only when its label covers at least this share of it"),

	K("model", "input_size", FP_CFG_INT, input_size, "64", 8, 512, NULL,
	  "network input in pixels; tiles are box-filtered down by an integer factor"),
	K("model", "width1", FP_CFG_INT, width1, "16", 1, 1024, NULL, "channels of stage 1"),
	K("model", "width2", FP_CFG_INT, width2, "32", 1, 1024, NULL, "channels of stage 2"),
	K("model", "width3", FP_CFG_INT, width3, "64", 1, 1024, NULL, "channels of stage 3 (= embedding size)"),
	K("model", "blocks", FP_CFG_INT, blocks, "2", 1, 8, NULL, "residual blocks per stage"),
	K("model", "groups", FP_CFG_INT, groups, "4", 1, 64, NULL, "GroupNorm groups (must divide every width)"),

	K("train", "epochs", FP_CFG_INT, epochs, "10", 1, 100000, NULL, "passes over the training tiles"),
	K("train", "steps", FP_CFG_INT, steps, "0", 0, 100000000, NULL,
	  "total optimiser steps; 0: epochs x ceil(training tiles / batch)"),
	K("train", "batch", FP_CFG_INT, batch, "32", 1, 4096, NULL, "tiles per step (over all MPI ranks)"),
	K("train", "optimizer", FP_CFG_ENUM, optimizer, "adamw", 0, 0, optimizers, "adamw or sgd (momentum)"),
	K("train", "lr", FP_CFG_DOUBLE, lr, "0.001", 1e-8, 10, NULL, "peak learning rate"),
	K("train", "weight_decay", FP_CFG_DOUBLE, weight_decay, "0.0001", 0, 1, NULL,
	  "weight decay of conv and linear weights (decoupled for adamw)"),
	K("train", "momentum", FP_CFG_DOUBLE, momentum, "0.9", 0, 0.999, NULL, "SGD momentum"),
	K("train", "clip_norm", FP_CFG_DOUBLE, clip_norm, "5", 0, 1e6, NULL, "global gradient-norm clip; 0: off"),
	K("train", "warmup", FP_CFG_INT, warmup, "100", 0, 100000000, NULL, "linear warm-up steps"),
	K("train", "cosine", FP_CFG_BOOL, cosine, "true", 0, 0, NULL, "cosine decay after warm-up (else constant)"),
	K("train", "min_lr_ratio", FP_CFG_DOUBLE, min_lr_ratio, "0.01", 0, 1, NULL, "cosine floor as a share of lr"),
	K("train", "prox_mu", FP_CFG_DOUBLE, prox_mu, "0", 0, 1000, NULL,
	  "FedProx proximal weight towards the start weights; 0: off"),
	K("train", "seed", FP_CFG_INT, seed, "1", 0, 9007199254740991.0, NULL,
	  "seed of initialisation, split, sampling and augmentation"),
	K("train", "class_balanced", FP_CFG_BOOL, class_balanced, "true", 0, 0, NULL,
	  "draw each tile's class uniformly among the classes present (else tiles uniformly)"),
	K("train", "patience", FP_CFG_INT, patience, "3", 0, 100000, NULL,
	  "stop after this many epochs without a better validation macro AUC; 0: never"),
	K("train", "checkpoint_every", FP_CFG_INT, checkpoint_every, "500", 0, 100000000, NULL,
	  "steps between checkpoints (one is also written after every epoch); 0: epochs only"),
	K("train", "checkpoint", FP_CFG_STRING, checkpoint, "models/tilenet.h5", 0, 0, NULL,
	  "latest checkpoint; the best model goes to <name>.best.h5, metrics to <name>.metrics.csv"),
	K("train", "threads", FP_CFG_INT, threads, "0", 0, 1024, NULL, "CPU threads; 0: all cores"),
	K("train", "backend", FP_CFG_ENUM, backend, "cpu", 0, 0, backends,
	  "cpu, or cuda (falls back to the CPU with one log line when no GPU answers)"),

	K("augment", "flips", FP_CFG_BOOL, flips, "true", 0, 0, NULL, "random horizontal and vertical flips"),
	K("augment", "rot90", FP_CFG_BOOL, rot90, "true", 0, 0, NULL, "random 90-degree rotations"),
	K("augment", "hed_jitter", FP_CFG_DOUBLE, hed_jitter, "0.05", 0, 0.5, NULL,
	  "HED stain jitter: each stain scaled by U(1-j, 1+j) and shifted by U(-j, j)"),
	K("augment", "brightness", FP_CFG_DOUBLE, brightness, "0.1", 0, 0.5, NULL, "brightness shift U(-b, b)"),
	K("augment", "contrast", FP_CFG_DOUBLE, contrast, "0.1", 0, 0.5, NULL, "contrast factor U(1-c, 1+c)"),
};

const struct fp_config_schema fp_train_schema = {"train", keys, sizeof keys / sizeof keys[0]};

void fp_train_config_resolve(const struct fp_train_config *c, const char *value, char *out, size_t size)
{
	if (value[0] == '/' || c->data_dir[0] == '\0')
		snprintf(out, size, "%s", value);
	else
		snprintf(out, size, "%s/%s", c->data_dir, value);
}
