# limma's squeezeVar on each case of a CSV (columns case, s2, df), robust and not; prints one line a cell:
#   <case> <robust TRUE/FALSE> <i> <var.post> <var.prior> <df.prior>
# Usage: Rscript tests/r/squeezevar.R tests/r/squeezevar_cases.csv
# Needs limma and statmod (Debian: apt-get install r-base-core r-bioc-limma r-cran-statmod).
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(limma))
d <- read.csv(args[1])
for (cs in unique(d$case)) {
  x <- d[d$case == cs, ]
  for (robust in c(FALSE, TRUE)) {
    out <- squeezeVar(x$s2, x$df, robust = robust)
    prior <- rep_len(out$var.prior, nrow(x))
    dfp <- rep_len(out$df.prior, nrow(x))
    for (i in seq_len(nrow(x))) cat(cs, robust, i, sprintf("%.12g", out$var.post[i]), sprintf("%.12g", prior[i]),
                                    sprintf("%.12g", dfp[i]), "\n")
  }
}
