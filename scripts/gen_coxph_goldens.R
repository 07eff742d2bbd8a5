#!/usr/bin/env Rscript
# gen_coxph_goldens.R: reference values for train/coxph.c from R's survival::coxph.
#
#   Rscript scripts/gen_coxph_goldens.R tests/data/coxph
#
# Writes each dataset as CSV (complete cases of the columns used) and one
# JSON per model with coefficients, model-based standard errors (the inverse
# information, coxph's naive.var when it reports a robust one), the robust
# (sandwich) standard errors, and the log partial likelihoods. Convergence is
# tightened (eps 1e-12) so that the golden is the MLE itself, not R's stopping
# point. Needs r-base-core and r-cran-survival (scripts/bootstrap --peers).
suppressPackageStartupMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args) >= 1) args[1] else "tests/data/coxph"
dir.create(out, showWarnings = FALSE, recursive = TRUE)
ctl <- coxph.control(eps = 1e-12, iter.max = 200, toler.chol = 1e-14)

write_data <- function(df, name) {
  write.csv(df, file.path(out, paste0(name, ".csv")), row.names = FALSE, quote = FALSE)
}
num <- function(x) formatC(x, digits = 17, format = "g")
json_vec <- function(x) paste0("[", paste(num(x), collapse = ", "), "]")
json_str <- function(x) paste0("[", paste0('"', x, '"', collapse = ", "), "]")

golden <- function(name, data, file, covariates, ties, strata = NULL, weights = NULL) {
  rhs <- paste(covariates, collapse = " + ")
  if (!is.null(strata)) rhs <- paste0(rhs, " + strata(", strata, ")")
  f <- as.formula(paste("Surv(time, status) ~", rhs))
  fit <- if (is.null(weights)) {
    coxph(f, data = data, ties = ties, control = ctl, x = TRUE)
  } else {
    data$w__ <- data[[weights]]
    coxph(f, data = data, ties = ties, control = ctl, weights = w__, robust = TRUE)
  }
  naive <- if (!is.null(fit$naive.var)) fit$naive.var else fit$var
  rob <- coxph(f, data = if (is.null(weights)) data else data, ties = ties, control = ctl,
               weights = if (is.null(weights)) NULL else data[[weights]], robust = TRUE)
  lines <- c(
    "{",
    paste0('  "model": "', name, '",'),
    paste0('  "data": "', file, '.csv",'),
    paste0('  "formula": "', deparse(f), '",'),
    paste0('  "ties": "', ties, '",'),
    paste0('  "strata": ', if (is.null(strata)) "null" else paste0('"', strata, '"'), ","),
    paste0('  "weights": ', if (is.null(weights)) "null" else paste0('"', weights, '"'), ","),
    paste0('  "covariates": ', json_str(covariates), ","),
    paste0('  "n": ', fit$n, ","),
    paste0('  "nevent": ', fit$nevent, ","),
    paste0('  "coef": ', json_vec(unname(coef(fit))), ","),
    paste0('  "se": ', json_vec(sqrt(diag(naive))), ","),
    paste0('  "robust_se": ', json_vec(sqrt(diag(rob$var))), ","),
    paste0('  "loglik_null": ', num(fit$loglik[1]), ","),
    paste0('  "loglik": ', num(fit$loglik[2]), ","),
    paste0('  "iterations": ', fit$iter, ","),
    paste0('  "r_version": "', R.version.string, '",'),
    paste0('  "survival_version": "', as.character(packageVersion("survival")), '"'),
    "}")
  writeLines(lines, file.path(out, paste0(name, ".json")))
}

lung2 <- na.omit(survival::lung[, c("time", "status", "age", "sex", "ph.ecog", "wt.loss", "inst")])
lung2$status <- lung2$status - 1                    # 1/2 -> 0/1
lung2$w <- 0.5 + (lung2$age %% 7) / 4               # deterministic non-integer weights
write_data(lung2, "lung")
golden("lung_efron", lung2, "lung", c("age", "sex", "ph.ecog", "wt.loss"), "efron")
golden("lung_breslow", lung2, "lung", c("age", "sex", "ph.ecog", "wt.loss"), "breslow")
golden("lung_weighted_efron", lung2, "lung", c("age", "sex", "ph.ecog"), "efron", weights = "w")

vet <- survival::veteran[, c("time", "status", "karno", "age", "prior", "trt", "celltype")]
vet$celltype <- as.integer(vet$celltype)
write_data(vet, "veteran")
golden("veteran_strata_efron", vet, "veteran", c("karno", "age", "prior", "trt"), "efron", strata = "celltype")
golden("veteran_strata_breslow", vet, "veteran", c("karno", "age", "prior", "trt"), "breslow", strata = "celltype")
cat("wrote goldens to", out, "\n")
