# Fit one lme4 model and print what tests/test_analysis_lmm.py compares, one item a line:
#   fixef <name> <estimate> <se> <satterthwaite df>   (df from lmerTest)
#   vc <group> <variance>            (group "Residual" is sigma^2)
#   crit <REML criterion, or deviance for ML>
# Usage: Rscript tests/r/lmm_fit.R frame.csv "y ~ x + (1 | g)" TRUE
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages({ library(lme4); library(lmerTest) })
d <- read.csv(args[1])
reml <- as.logical(args[3])
m <- lmerTest::lmer(as.formula(args[2]), data = d, REML = reml)
s <- summary(m)$coefficients
for (i in seq_len(nrow(s))) cat("fixef", rownames(s)[i], sprintf("%.12g", s[i, "Estimate"]),
                              sprintf("%.12g", s[i, "Std. Error"]), sprintf("%.12g", s[i, "df"]), "\n")
vc <- as.data.frame(VarCorr(m))
for (i in seq_len(nrow(vc))) cat("vc", vc$grp[i], sprintf("%.12g", vc$vcov[i]), "\n")
cat("crit", sprintf("%.12g", if (reml) lme4::REMLcrit(m) else deviance(m)), "\n")
