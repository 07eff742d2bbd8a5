#!/usr/bin/env Rscript
# gen_validate_goldens.R: reference values for validate/ from R itself.
#
# Exports small public datasets shipped with R packages (survival::lung,
# survival::veteran, survival::pbc, survival::colon, pROC::aSAH,
# metadat::dat.bcg, metadat::dat.hine1989) to CSV, computes every statistic of
# `fedpath stats` with the R call it must equal, and writes
# tests/data/validate/goldens.json. tests/unit/test_validate_reference.c
# recomputes each case from the CSV and compares.
#
# Exact command (from the repository root):
#   Rscript scripts/gen_validate_goldens.R tests/data/validate
# Needs (Debian 12): r-base-core r-cran-survival r-cran-proc r-cran-metafor
#                   r-cran-riskregression
# Made with R 4.2.2, survival 3.5-3, pROC 1.18.0, metafor 3.8-1,
# riskRegression 2022.11.28.
#
# Numbers are written with 17 significant digits so that a double survives.

suppressPackageStartupMessages({
  library(survival); library(pROC); library(metafor); library(riskRegression); library(prodlim)
})
args <- commandArgs(trailingOnly = TRUE)
outdir <- if (length(args)) args[1] else "tests/data/validate"
dir.create(outdir, showWarnings = FALSE, recursive = TRUE)

num <- function(x) ifelse(is.na(x), "null", sprintf("%.17g", x))
write_csv17 <- function(df, file) {
  cols <- lapply(df, function(v) if (is.numeric(v)) sprintf("%.17g", v) else as.character(v))
  lines <- c(paste(names(df), collapse = ","), do.call(paste, c(cols, sep = ",")))
  writeLines(lines, file.path(outdir, file))
}
# A tiny JSON writer: named list -> object, unnamed vector of length != 1 -> array.
to_json <- function(x) {
  if (is.list(x) && !is.null(names(x))) {
    parts <- mapply(function(k, v) paste0('"', k, '":', to_json(v)), names(x), x)
    return(paste0("{", paste(parts, collapse = ","), "}"))
  }
  if (is.list(x)) return(paste0("[", paste(sapply(x, to_json), collapse = ","), "]"))
  if (is.logical(x)) return(if (x) "true" else "false")
  if (is.character(x)) return(paste0('"', x, '"'))
  if (inherits(x, "AsIs") || length(x) != 1) return(paste0("[", paste(num(x), collapse = ","), "]"))
  num(x)
}
cases <- list()
add <- function(name, stat, csv, args, expect) {
  cases[[length(cases) + 1]] <<- list(name = name, stat = stat, csv = csv, args = args, expect = expect)
}

## ---- datasets ---------------------------------------------------------
data(aSAH, package = "pROC")
asah <- data.frame(label = as.integer(aSAH$outcome == "Poor"), s100b = aSAH$s100b,
                   ndka = aSAH$ndka, wfns = as.integer(aSAH$wfns), age = aSAH$age)
gl <- glm(label ~ s100b + age, family = binomial, data = asah)
asah$p_fit <- fitted(gl)                                    # calibrated in sample
asah$p_off <- plogis(0.4 + 0.7 * qlogis(asah$p_fit))        # miscalibrated
write_csv17(asah, "asah.csv")

lung2 <- survival::lung
lung2 <- lung2[complete.cases(lung2[, c("inst", "time", "status", "age", "ph.ecog", "sex")]), ]
lung <- data.frame(inst = lung2$inst, time = lung2$time, event = lung2$status - 1L,
                   age = lung2$age, ecog = lung2$ph.ecog, sex = lung2$sex)
lung$p_death <- plogis(-0.5 + 0.03 * (lung$age - 62) + 0.6 * lung$ecog - 0.4 * (lung$sex - 1))
lung$risk365 <- 1 - exp(-exp(-6 + 0.02 * lung$age + 0.5 * lung$ecog) * 365)
write_csv17(lung, "lung.csv")

vet <- data.frame(time = veteran$time, event = veteran$status, karno = veteran$karno,
                  celltype = as.character(veteran$celltype), age = veteran$age)
vet$risk100 <- round(plogis(2 - 0.04 * vet$karno), 3)     # ties through karno
write_csv17(vet, "veteran.csv")

pbc2 <- survival::pbc[1:312, ]
pbc <- data.frame(time = pbc2$time, event = as.integer(pbc2$status == 2), bili = pbc2$bili,
                  age = pbc2$age, edema = pbc2$edema)
pbc$p_death <- fitted(glm(event ~ log(bili) + age, family = binomial, data = pbc))
cx <- coxph(Surv(time, event) ~ log(bili) + age, data = pbc, x = TRUE)
pbc$risk2000 <- as.numeric(predictRisk(cx, newdata = pbc, times = 2000))
write_csv17(pbc, "pbc.csv")

col2 <- survival::colon
col2 <- col2[col2$etype == 1 & !is.na(col2$nodes), ]
colon <- data.frame(time = col2$time, event = col2$status, nodes = col2$nodes,
                    rx = as.character(col2$rx), extent = col2$extent, age = col2$age)
colon$p_rec <- plogis(-1.2 + 0.15 * colon$nodes + 0.3 * (colon$extent - 3))
# Three arms (rx: Obs, Lev, Lev+5FU), a made-up recommendation and propensities
# (softmax of fixed linear scores; the test is of the arithmetic, not the model).
colon$arm <- as.integer(factor(colon$rx, levels = c("Obs", "Lev", "Lev+5FU"))) - 1L
colon$recommended <- ifelse(colon$nodes >= 4, 2L, ifelse(colon$age > 65, 0L, 1L))
ez <- cbind(1, exp(0.01 * (colon$age - 60)), exp(-0.2 + 0.05 * colon$nodes))
colon$ps0 <- ez[, 1] / rowSums(ez); colon$ps1 <- ez[, 2] / rowSums(ez); colon$ps2 <- ez[, 3] / rowSums(ez)
write_csv17(colon, "colon.csv")

## ---- auc: pROC, direction "<", DeLong ----------------------------------
auc_case <- function(name, df, file, score, label = "label") {
  r <- roc(df$label, df[[score]], levels = c(0, 1), direction = "<", quiet = TRUE)
  v <- var(r, method = "delong")
  ci <- ci.auc(r, method = "delong")
  add(name, "auc", file, list(label = label, score = score),
      list(n = nrow(df), cases = sum(df$label == 1), controls = sum(df$label == 0),
           auc = as.numeric(r$auc), se = sqrt(v), ci_low = ci[1], ci_high = ci[3]))
}
auc_case("asah_s100b", asah, "asah.csv", "s100b")
auc_case("asah_ndka", asah, "asah.csv", "ndka")
auc_case("asah_wfns_ties", asah, "asah.csv", "wfns")
auc_case("asah_age", asah, "asah.csv", "age")
lungb <- data.frame(label = lung$event, age = lung$age, ecog = lung$ecog)
auc_case("lung_event_age", lungb, "lung.csv", "age", label = "event")

## ---- cindex: survival::concordance, reverse = TRUE, timefix = FALSE ----
cindex_case <- function(name, df, file, score, tau = NULL, uno = FALSE, strata = NULL) {
  f <- if (is.null(strata)) Surv(time, event) ~ sc else Surv(time, event) ~ sc + strata(st)
  d <- data.frame(time = df$time, event = df$event, sc = df[[score]])
  if (!is.null(strata)) d$st <- df[[strata]]
  a <- list(f, data = d, reverse = TRUE, timefix = FALSE,
            timewt = if (uno) "n/G2" else "n")
  if (!is.null(tau)) a$ymax <- tau
  fit <- do.call(concordance, a)
  cnt <- if (is.matrix(fit$count)) colSums(fit$count) else fit$count
  args <- list(time = "time", event = "event", score = score)
  if (!is.null(tau)) args$tau <- tau
  if (uno) args$uno <- TRUE
  if (!is.null(strata)) args$strata <- strata
  add(name, "cindex", file, args,
      list(c = fit$concordance, se = sqrt(fit$var), concordant = cnt[["concordant"]],
           discordant = cnt[["discordant"]], tied_x = cnt[["tied.x"]],
           tied_y = cnt[["tied.y"]], tied_xy = cnt[["tied.xy"]]))
}
cindex_case("lung_age", lung, "lung.csv", "age")
cindex_case("lung_ecog_ties", lung, "lung.csv", "ecog")
cindex_case("lung_age_tau365", lung, "lung.csv", "age", tau = 365)
cindex_case("lung_age_uno", lung, "lung.csv", "age", uno = TRUE)
cindex_case("lung_ecog_uno_tau500", lung, "lung.csv", "ecog", tau = 500, uno = TRUE)
cindex_case("lung_age_strata_inst", lung, "lung.csv", "age", strata = "inst")
cindex_case("lung_age_strata_sex", lung, "lung.csv", "age", strata = "sex")
cindex_case("lung_ecog_uno_strata_sex", lung, "lung.csv", "ecog", uno = TRUE, strata = "sex")
cindex_case("veteran_karno", vet, "veteran.csv", "karno")
cindex_case("veteran_karno_strata_cell", vet, "veteran.csv", "karno", strata = "celltype")
cindex_case("veteran_karno_uno_tau200", vet, "veteran.csv", "karno", tau = 200, uno = TRUE)
cindex_case("pbc_bili", pbc, "pbc.csv", "bili")
cindex_case("pbc_bili_uno_tau3000", pbc, "pbc.csv", "bili", tau = 3000, uno = TRUE)
cindex_case("pbc_bili_strata_edema_tau2000", pbc, "pbc.csv", "bili", tau = 2000, strata = "edema")
cindex_case("colon_nodes", colon, "colon.csv", "nodes")
cindex_case("colon_nodes_strata_rx", colon, "colon.csv", "nodes", strata = "rx")
cindex_case("colon_nodes_uno_tau1825", colon, "colon.csv", "nodes", tau = 1825, uno = TRUE)

## ---- calibration: glm + loess(surface = "direct") ----------------------
ctl <- glm.control(epsilon = 1e-14, maxit = 200)   # converge fully, as fedpath does
calib_case <- function(name, y, p, file, label, prob) {
  lp <- qlogis(p)
  citl <- unname(coef(glm(y ~ offset(lp), family = binomial, control = ctl))[1])
  slope <- unname(coef(glm(y ~ lp, family = binomial, control = ctl))[2])
  brier <- mean((p - y)^2)
  sm <- loess(y ~ p, span = 0.75, degree = 2, family = "gaussian", surface = "direct")
  d <- abs(fitted(sm) - p)
  di <- abs(fitted(loess(y ~ p)) - p)     # R's defaults: surface = "interpolate"
  add(name, "calibration", file, list(label = label, prob = prob),
      list(citl = citl, slope = slope, oe = sum(p) / sum(y), brier = brier,
           scaled_brier = 1 - brier / (mean(y) * (1 - mean(y))),
           ici = mean(d), e50 = unname(quantile(d, 0.5, type = 7)),
           e90 = unname(quantile(d, 0.9, type = 7)),
           ici_interpolate = mean(di), e50_interpolate = unname(quantile(di, 0.5, type = 7)),
           e90_interpolate = unname(quantile(di, 0.9, type = 7))))
}
calib_case("asah_fit", asah$label, asah$p_fit, "asah.csv", "label", "p_fit")
calib_case("asah_off", asah$label, asah$p_off, "asah.csv", "label", "p_off")
calib_case("lung_death", lung$event, lung$p_death, "lung.csv", "event", "p_death")
calib_case("pbc_death", pbc$event, pbc$p_death, "pbc.csv", "event", "p_death")
calib_case("colon_rec", colon$event, colon$p_rec, "colon.csv", "event", "p_rec")

## ---- km: summary(survfit(), times = ) ----------------------------------
km_case <- function(name, df, file, at) {
  s <- summary(survfit(Surv(time, event) ~ 1, data = df), times = at)
  add(name, "km", file, list(time = "time", event = "event", at = I(at)),
      list(times = I(s$time), survival = I(s$surv), se = I(s$std.err), n_risk = I(s$n.risk)))
}
km_case("lung_km", lung, "lung.csv", c(0, 100, 200, 365, 500, 730))
km_case("veteran_km", vet, "veteran.csv", c(30, 90, 180, 365, 500))
km_case("colon_km", colon, "colon.csv", c(365, 730, 1095, 1825, 2500))
km_case("pbc_km", pbc, "pbc.csv", c(1000, 2000, 3000, 4000))

## ---- meta: rma(REML, knha), PI with t(k-2) -----------------------------
rctl <- list(threshold = 1e-13, maxiter = 10000)
meta_case <- function(name, est, se, scale, file) {
  write_csv17(data.frame(centre = seq_along(est), estimate = est, se = se), file)
  tr <- switch(scale, identity = list(y = est, s = se, b = identity),
               log = list(y = log(est), s = se / est, b = exp),
               logit = list(y = qlogis(est), s = se / (est * (1 - est)), b = plogis))
  fit <- rma(tr$y, sei = tr$s, method = "REML", test = "knha", control = rctl)
  k <- fit$k
  pi <- if (k >= 3) fit$b[1] + c(-1, 1) * qt(0.975, k - 2) * sqrt(fit$tau2 + fit$se^2) else c(NA, NA)
  add(name, "meta", file, list(estimate = "estimate", se = "se", scale = scale),
      list(k = k, estimate = tr$b(fit$b[1]), ci_low = tr$b(fit$ci.lb), ci_high = tr$b(fit$ci.ub),
           pi_low = tr$b(pi[1]), pi_high = tr$b(pi[2]), tau2 = fit$tau2, i2 = fit$I2))
}
data(dat.bcg, package = "metadat")
bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
meta_case("bcg_rr_log", exp(bcg$yi), exp(bcg$yi) * sqrt(bcg$vi), "log", "meta_bcg_rr.csv")
meta_case("bcg_logrr_identity", as.numeric(bcg$yi), sqrt(bcg$vi), "identity", "meta_bcg_logrr.csv")
meta_case("bcg_first4_log", exp(bcg$yi[1:4]), exp(bcg$yi[1:4]) * sqrt(bcg$vi[1:4]), "log", "meta_bcg4.csv")
data(dat.hine1989, package = "metadat")
hine <- escalc(measure = "RD", n1i = n1i, n2i = n2i, ai = ai, ci = ci, data = dat.hine1989)
meta_case("hine_rd_identity_tau0", as.numeric(hine$yi), sqrt(hine$vi), "identity", "meta_hine_rd.csv")
# Per-institution C-index of lung (institutions with >= 8 patients), on the logit scale.
cs <- do.call(rbind, lapply(split(lung, lung$inst), function(d) {
  if (nrow(d) < 8 || sum(d$event) < 3) return(NULL)
  f <- concordance(Surv(time, event) ~ age, data = d, reverse = TRUE, timefix = FALSE)
  data.frame(c = f$concordance, se = sqrt(f$var))
}))
meta_case("lung_inst_cindex_logit", cs$c, cs$se, "logit", "meta_lung_cindex.csv")

## ---- roc_test: pROC::roc.test(paired, DeLong) ------------------------
roc_test_case <- function(name, df, file, s1, s2) {
  r1 <- roc(df$label, df[[s1]], levels = c(0, 1), direction = "<", quiet = TRUE)
  r2 <- roc(df$label, df[[s2]], levels = c(0, 1), direction = "<", quiet = TRUE)
  tt <- roc.test(r1, r2, method = "delong", paired = TRUE)
  add(name, "roc_test", file, list(label = "label", score = s1, score2 = s2),
      list(auc1 = as.numeric(r1$auc), auc2 = as.numeric(r2$auc), z = unname(tt$statistic), p = tt$p.value))
}
roc_test_case("asah_s100b_vs_ndka", asah, "asah.csv", "s100b", "ndka")
roc_test_case("asah_wfns_vs_s100b", asah, "asah.csv", "wfns", "s100b")
roc_test_case("asah_age_vs_ndka", asah, "asah.csv", "age", "ndka")

## ---- logrank: survival::survdiff ---------------------------------------
logrank_case <- function(name, df, file, group) {
  sd <- survdiff(Surv(df$time, df$event) ~ df[[group]])
  add(name, "logrank", file, list(time = "time", event = "event", group = group),
      list(groups = length(sd$n), chisq = sd$chisq, df = length(sd$n) - 1,
           p = pchisq(sd$chisq, length(sd$n) - 1, lower.tail = FALSE)))
}
logrank_case("lung_sex", lung, "lung.csv", "sex")
logrank_case("veteran_celltype", vet, "veteran.csv", "celltype")
logrank_case("colon_rx", colon, "colon.csv", "rx")
logrank_case("pbc_edema", pbc, "pbc.csv", "edema")

## ---- multiclass: pROC::multiclass.roc (Hand & Till; direction ">" because
## pROC takes the first class of each pair as the control) and one-vs-rest --
X <- as.matrix(iris[, 1:4])
W <- matrix(c(0.5, 1.5, -1.2, -0.8, 0.2, 0.4, 0.3, -0.2, -0.6, -0.3, 0.9, 1.1), 4)
E <- exp(X %*% W - 5)
P <- round(E / rowSums(E), 2)                        # rounded: ties within classes
colnames(P) <- levels(iris$Species)
write_csv17(data.frame(species = as.character(iris$Species), P), "iris_probs.csv")
ovr <- sapply(levels(iris$Species), function(c)
  as.numeric(roc(as.integer(iris$Species == c), P[, c], levels = c(0, 1), direction = "<", quiet = TRUE)$auc))
prev <- as.numeric(table(iris$Species)) / nrow(iris)
add("iris_softmax", "multiclass", "iris_probs.csv",
    list(class = "species", probs = paste(levels(iris$Species), collapse = ",")),
    list(n = nrow(P), hand_till = as.numeric(multiclass.roc(iris$Species, P, direction = ">")$auc),
         ovr_macro = mean(ovr), ovr_weighted = sum(prev * ovr)))
aS <- cbind(Good = 1 - asah$p_fit, Poor = asah$p_fit)
add("asah_two_class", "multiclass", "asah_mc.csv", list(class = "outcome", probs = "Good,Poor"),
    list(n = nrow(asah), hand_till = as.numeric(multiclass.roc(factor(ifelse(asah$label == 1, "Poor", "Good")),
                                                                aS, direction = ">")$auc)))
write_csv17(data.frame(outcome = ifelse(asah$label == 1, "Poor", "Good"), aS), "asah_mc.csv")

## ---- horizon: riskRegression::Score(cens.model = "km"), KM O/E ---------
horizon_case <- function(name, df, file, risk, t) {
  sc <- Score(list(m = matrix(df[[risk]], ncol = 1)), formula = Hist(time, event) ~ 1, data = df,
              times = t, metrics = c("auc", "brier"), summary = "ipa", cens.model = "km",
              null.model = TRUE, se.fit = FALSE)
  b <- as.data.frame(sc$Brier$score)
  km <- summary(survfit(Surv(time, event) ~ 1, data = df), times = t)$surv
  lp <- log(-log(1 - df[[risk]]))          # cloglog: the calibration slope's covariate
  cx <- coxph(Surv(df$time, df$event) ~ lp, ties = "efron", control = coxph.control(eps = 1e-11))
  add(name, "horizon", file, list(time = "time", event = "event", risk = risk, at = t, recalibrate = TRUE),
      list(auc = as.data.frame(sc$AUC$score)$AUC, brier = b$Brier[b$model == "m"],
           brier_null = b$Brier[b$model == "Null model"], ipa = b$IPA[b$model == "m"],
           km_risk = 1 - km, oe = (1 - km) / mean(df[[risk]]),
           recal_slope = unname(coef(cx)), recal_slope_se = sqrt(cx$var[1, 1])))
}
horizon_case("lung_365", lung, "lung.csv", "risk365", 365)
horizon_case("lung_365_at_200", lung, "lung.csv", "risk365", 200)
horizon_case("veteran_100_ties", vet, "veteran.csv", "risk100", 100)
horizon_case("pbc_cox_2000", pbc, "pbc.csv", "risk2000", 2000)

## ---- benefit: IPTW-weighted KM (survfit weights), rmean; IPCW policy value --
benefit_case <- function(name, df, file, tau) {
  ps <- as.matrix(df[, c("ps0", "ps1", "ps2")])
  w <- 1 / ps[cbind(seq_len(nrow(df)), df$arm + 1)]
  fol <- df$arm == df$recommended
  fit <- survfit(Surv(time, event) ~ fol, data = df, weights = w)
  tab <- summary(fit, rmean = tau)$table
  st <- summary(fit, times = tau)$surv
  y <- pmin(df$time, tau)
  G <- prodlim(Hist(time, event) ~ 1, data = df, reverse = TRUE)   # censoring KM
  g <- sapply(y, function(u) { s <- G$surv[G$time < u]; if (length(s)) tail(s, 1) else 1 })  # G(u-)
  comp <- df$event == 1 | df$time >= tau
  pv <- sum(ifelse(fol & comp, y * w / g, 0)) / nrow(df)
  cx <- coxph(Surv(time, event) ~ as.integer(fol), data = df, weights = w, ties = "efron",
              control = coxph.control(eps = 1e-11, iter.max = 100))
  nv <- if (is.null(cx$naive.var)) cx$var else cx$naive.var
  add(name, "benefit", file, list(time = "time", event = "event", arm = "arm", recommended = "recommended",
                                  propensity = "ps0,ps1,ps2", at = tau),
      list(followed = sum(fol), not_followed = sum(!fol),
           surv_followed = st[2], surv_not = st[1],
           rmst_followed = unname(tab[2, "rmean"]), rmst_not = unname(tab[1, "rmean"]),
           rmst_diff = unname(tab[2, "rmean"] - tab[1, "rmean"]), policy_value = pv,
           hr = unname(exp(coef(cx))), log_hr = unname(coef(cx)), log_hr_se = sqrt(nv[1, 1])))
}
benefit_case("colon_benefit_1825", colon, "colon.csv", 1825)
benefit_case("colon_benefit_1000", colon, "colon.csv", 1000)

## ---- write ------------------------------------------------------------
hdr <- list(generator = "scripts/gen_validate_goldens.R",
            r = paste(R.version$major, R.version$minor, sep = "."),
            survival = as.character(packageVersion("survival")),
            pROC = as.character(packageVersion("pROC")),
            metafor = as.character(packageVersion("metafor")))
writeLines(paste0('{"about":', to_json(hdr), ',\n"cases":[\n',
                  paste(sapply(cases, to_json), collapse = ",\n"), "\n]}"),
           file.path(outdir, "goldens.json"))
cat("wrote", length(cases), "cases to", outdir, "\n")
