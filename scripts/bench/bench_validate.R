# bench_validate.R: R's side of scripts/bench/bench_validate.sh.
#   Rscript bench_validate.R cindex FILE B   concordance once + B bootstrap refits
#   Rscript bench_validate.R auc FILE        pROC roc + DeLong CI
#   Rscript bench_validate.R ici FILE B      loess ICI + B bootstrap refits
suppressPackageStartupMessages({ library(survival); library(pROC) })
a <- commandArgs(trailingOnly = TRUE)
d <- read.csv(a[2])
if (a[1] == "cindex") {
  B <- as.integer(a[3])
  t0 <- proc.time()[["elapsed"]]
  f <- concordance(Surv(time, event) ~ score, data = d, reverse = TRUE, timefix = FALSE)
  t1 <- proc.time()[["elapsed"]]
  set.seed(1)
  reps <- numeric(B)
  for (b in seq_len(B)) {
    i <- sample.int(nrow(d), replace = TRUE)
    reps[b] <- concordance(Surv(time, event) ~ score, data = d[i, ], reverse = TRUE, timefix = FALSE)$concordance
  }
  t2 <- proc.time()[["elapsed"]]
  cat(sprintf("R_cindex_once %.4f c=%.15g se=%.15g conc=%.0f disc=%.0f\n", t1 - t0, f$concordance,
              sqrt(f$var), f$count[["concordant"]], f$count[["discordant"]]))
  cat(sprintf("R_cindex_boot%d %.4f sd=%.6f\n", B, t2 - t1, sd(reps)))
} else if (a[1] == "ici") {
  B <- as.integer(a[3])
  ici <- function(dd) mean(abs(fitted(loess(label ~ prob, data = dd)) - dd$prob))
  t0 <- proc.time()[["elapsed"]]
  est <- ici(d)
  set.seed(1)
  reps <- replicate(B, ici(d[sample.int(nrow(d), replace = TRUE), ]))
  t1 <- proc.time()[["elapsed"]]
  cat(sprintf("R_ici_boot%d %.4f ici=%.15g sd=%.6f\n", B, t1 - t0, est, sd(reps)))
} else {
  t0 <- proc.time()[["elapsed"]]
  r <- roc(d$label, d$score, levels = c(0, 1), direction = "<", quiet = TRUE)
  v <- var(r, method = "delong")
  ci <- ci.auc(r, method = "delong")
  t1 <- proc.time()[["elapsed"]]
  cat(sprintf("R_pROC_auc_delong %.4f auc=%.15g se=%.15g\n", t1 - t0, as.numeric(r$auc), sqrt(v)))
}
