# Fit lme4 models and print what tests/test_analysis_lmm.py compares, one item a line:
#   case <i>                                           (before the i-th model, from 1)
#   fixef <name> <estimate> <se> <satterthwaite df>    (df from lmerTest)
#   vc <group> <variance>                              (group "Residual" is sigma^2)
#   crit <REML criterion, or deviance for ML>
#   time <seconds of the lmer call alone>
# Usage: Rscript tests/r/lmm_fit.R frame.csv "y ~ x + (1 | g)" TRUE [frame2.csv formula2 REML2 ...]
# With CAPGATE_R_NO_DF=1, or without the lmerTest package, lme4::lmer is used and df are printed as NA.
# CAPGATE_R_RELEVEL="init=scratch,col=level" sets treatment-contrast reference levels.
args <- commandArgs(trailingOnly = TRUE)
no_df <- Sys.getenv("CAPGATE_R_NO_DF") == "1" || !requireNamespace("lmerTest", quietly = TRUE)
suppressPackageStartupMessages({ library(lme4); if (!no_df) library(lmerTest) })
for (k in seq(1, length(args), by = 3)) {
  cat("case", (k + 2) / 3, "\n")
  d <- read.csv(args[k])
  for (kv in strsplit(strsplit(Sys.getenv("CAPGATE_R_RELEVEL"), ",")[[1]], "=")) {
    d[[kv[1]]] <- relevel(factor(d[[kv[1]]]), ref = kv[2])
  }
  reml <- as.logical(args[k + 2])
  f <- as.formula(args[k + 1])
  t0 <- proc.time()[["elapsed"]]
  m <- if (no_df) lme4::lmer(f, data = d, REML = reml) else lmerTest::lmer(f, data = d, REML = reml)
  elapsed <- proc.time()[["elapsed"]] - t0
  s <- summary(m)$coefficients
  for (i in seq_len(nrow(s))) cat("fixef", rownames(s)[i], sprintf("%.12g", s[i, "Estimate"]),
                                sprintf("%.12g", s[i, "Std. Error"]),
                                if (no_df) "NA" else sprintf("%.12g", s[i, "df"]), "\n")
  vc <- as.data.frame(VarCorr(m))
  for (i in seq_len(nrow(vc))) cat("vc", vc$grp[i], sprintf("%.12g", vc$vcov[i]), "\n")
  cat("crit", sprintf("%.12g", if (reml) lme4::REMLcrit(m) else deviance(m)), "\n")
  cat("time", sprintf("%.4f", elapsed), "\n")
}
