/*
 * validate_dist.h: the few distribution functions validate/ needs (Student
 * t, normal, chi-squared), accurate to about 1e-14 relative: enough to match
 * R's qt/pnorm/pchisq to the 1e-9 the reference tests ask for.
 */
#ifndef FP_VALIDATE_DIST_H
#define FP_VALIDATE_DIST_H

double fp_vd_pt(double t, double df);     /* P(T <= t) */
double fp_vd_qt(double p, double df);     /* inverse of fp_vd_pt, 0 < p < 1 */
double fp_vd_pnorm(double z);             /* P(Z <= z) */
double fp_vd_qnorm(double p);             /* inverse, 0 < p < 1 */
double fp_vd_pchisq_upper(double x, double df); /* P(X > x) */

#endif
