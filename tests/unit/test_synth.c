/*
 * test_synth.c: the phantom cohort generator (data/fp_synth.h).
 * Each case names the header statement or issue-3 requirement it checks.
 */
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fp_clinical.h"
#include "fp_common.h"
#include "fp_slide.h"
#include "fp_synth.h"
#include "fp_test.h"

static void tiny_params(struct fp_synth_params *p, int centres, int patients)
{
	fp_synth_params_default(p);
	p->size = FP_SYNTH_TINY;
	p->centres = centres;
	p->patients = patients;
	p->seed = 20261127;
	p->quiet = 1;
}

static char *read_file(const char *path, size_t *len)
{
	char *d = NULL;
	if (fp_file_read_all(path, 1u << 30, &d, len) != FP_OK) return NULL;
	return d;
}

static int exists(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0;
}

/* Compares every regular file under dir a with the same path under dir b. */
static const char *cmp_base_a, *cmp_base_b;
static int cmp_files, cmp_bad;
static int cmp_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag != FTW_F) return 0;
	char other[4096];
	snprintf(other, sizeof other, "%s%s", cmp_base_b, path + strlen(cmp_base_a));
	size_t la = 0, lb = 0;
	char *a = read_file(path, &la), *b = read_file(other, &lb);
	if (!a || !b || la != lb || memcmp(a, b, la) != 0) {
		fprintf(stderr, "differs: %s vs %s\n", path, other);
		cmp_bad++;
	}
	cmp_files++;
	free(a);
	free(b);
	return 0;
}

/* fp_synth.h: "the same parameters and fedpath version give byte-identical
 * files, whatever the number of threads" (issue 3, item 7). */
FP_TEST(same_seed_gives_byte_identical_files)
{
	struct fp_synth_params p;
	tiny_params(&p, 2, 2);
	char a[4096], b[4096];
	snprintf(a, sizeof a, "%s/a", fp_test_tmpdir());
	snprintf(b, sizeof b, "%s/b", fp_test_tmpdir());
	p.threads = 1;
	CHECK_OK(fp_synth_generate(&p, a, NULL));
	p.threads = 2;
	CHECK_OK(fp_synth_generate(&p, b, NULL));
	cmp_base_a = a;
	cmp_base_b = b;
	cmp_files = cmp_bad = 0;
	CHECK(nftw(a, cmp_entry, 16, FTW_PHYS) == 0);
	CHECK_INT_EQ(cmp_bad, 0);
	/* 4 slides + 4 class maps + 2 clinical + patients + slides + cohort.json */
	CHECK_INT_EQ(cmp_files, 13);
}

FP_TEST(another_seed_gives_another_cohort)
{
	struct fp_synth_params p;
	tiny_params(&p, 1, 30);
	struct fp_synth_patient *x = NULL, *y = NULL;
	size_t nx, ny;
	CHECK_OK(fp_synth_draw_cohort(&p, &x, &nx));
	p.seed++;
	CHECK_OK(fp_synth_draw_cohort(&p, &y, &ny));
	CHECK_INT_EQ(nx, ny);
	int same = 0;
	for (size_t i = 0; i < nx; i++) same += x[i].rfs_months == y[i].rfs_months;
	CHECK(same < 3);
	free(x);
	free(y);
}

/* Issue 3, item 9: bad arguments give a clear error and leave nothing that
 * looks complete. */
FP_TEST(zero_centres_is_refused_and_writes_nothing)
{
	struct fp_synth_params p;
	tiny_params(&p, 0, 6);
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/out", fp_test_tmpdir());
	CHECK_STATUS(fp_synth_generate(&p, dir, NULL), FP_ERR_INVALID_ARG);
	CHECK_STR_CONTAINS(fp_error_msg(), "centres");
	CHECK(!exists(dir));
	enum fp_synth_size s;
	CHECK_STATUS(fp_synth_size_parse("huge", &s), FP_ERR_INVALID_ARG);
	CHECK_STR_CONTAINS(fp_error_msg(), "huge");
	enum fp_synth_format f;
	CHECK_STATUS(fp_synth_format_parse("ndpi", &f), FP_ERR_INVALID_ARG);
	tiny_params(&p, 2, 0);
	CHECK_STATUS(fp_synth_params_check(&p), FP_ERR_INVALID_ARG);
	tiny_params(&p, 2, 2);
	p.missing_rate = 0.9;
	CHECK_STATUS(fp_synth_params_check(&p), FP_ERR_INVALID_ARG);
}

FP_TEST(non_empty_folder_needs_force)
{
	struct fp_synth_params p;
	tiny_params(&p, 1, 1);
	char dir[2048], keep[4096], marker[4096];
	snprintf(dir, sizeof dir, "%s/out", fp_test_tmpdir());
	snprintf(keep, sizeof keep, "%s/notes.txt", dir);
	snprintf(marker, sizeof marker, "%s/cohort.json", dir);
	CHECK_OK(fp_mkdir_p(dir, 0755));
	CHECK_OK(fp_file_commit(keep, "mine\n", 5, 0644));
	CHECK_STATUS(fp_synth_generate(&p, dir, NULL), FP_ERR_EXISTS);
	CHECK_STR_CONTAINS(fp_error_msg(), "--force");
	CHECK(!exists(marker));
	size_t n = 0;
	int entries = 0;
	DIR *d = opendir(dir);
	CHECK(d != NULL);
	for (struct dirent *e; (e = readdir(d)) != NULL;) entries += e->d_name[0] != '.';
	closedir(d);
	CHECK_INT_EQ(entries, 1); /* only the user's file, no staging left */
	char *k = read_file(keep, &n);
	CHECK(k && n == 5);
	free(k);
	char old_centre[4096];
	snprintf(old_centre, sizeof old_centre, "%s/H07", dir);
	CHECK_OK(fp_mkdir_p(old_centre, 0755));
	snprintf(old_centre, sizeof old_centre, "%s/H07/clinical.csv", dir);
	CHECK_OK(fp_file_commit(old_centre, "x\n", 2, 0644));
	p.force = 1;
	CHECK_OK(fp_synth_generate(&p, dir, NULL));
	CHECK(exists(marker));
	CHECK(exists(keep)); /* --force replaces our entries only */
	CHECK(!exists(old_centre)); /* ... including centres of an earlier, larger cohort */
}

FP_TEST(unwritable_output_is_an_io_error)
{
	struct fp_synth_params p;
	tiny_params(&p, 1, 1);
	char file[2048], dir[4096];
	snprintf(file, sizeof file, "%s/plain-file", fp_test_tmpdir());
	CHECK_OK(fp_file_commit(file, "x", 1, 0644));
	snprintf(dir, sizeof dir, "%s/sub", file); /* a folder under a regular file */
	CHECK_STATUS(fp_synth_generate(&p, dir, NULL), FP_ERR_IO);
	CHECK_STR_CONTAINS(fp_error_msg(), "plain-file");
}

/* Harrell's C of `score` (higher = earlier event) on right-censored times. */
static double harrell_c(const struct fp_synth_patient *p, size_t n)
{
	double conc = 0, pairs = 0;
	for (size_t i = 0; i < n; i++) {
		if (!p[i].rfs_event) continue;
		for (size_t j = 0; j < n; j++) {
			if (p[j].rfs_months <= p[i].rfs_months) continue;
			double a = p[i].lp[p[i].regimen], b = p[j].lp[p[j].regimen];
			pairs += 1;
			conc += a > b ? 1 : a == b ? 0.5 : 0;
		}
	}
	return conc / pairs;
}

/* Issue 3, item 8: "the C-index of the true linear predictor on the generated
 * RFS is at least 0.7 at demo size; the best-regimen classes are all present". */
FP_TEST(true_linear_predictor_has_cindex_at_least_0_7_at_demo_size)
{
	struct fp_synth_params p;
	fp_synth_params_default(&p);
	p.centres = 8;
	p.patients = 40; /* the demo size's default */
	for (uint64_t seed = 1; seed <= 3; seed++) {
		p.seed = seed;
		struct fp_synth_patient *pts = NULL;
		size_t n = 0;
		CHECK_OK(fp_synth_draw_cohort(&p, &pts, &n));
		CHECK_INT_EQ(n, 320);
		double c = harrell_c(pts, n);
		CHECK_MSG(c >= 0.70, "seed %llu: C-index %.3f < 0.70", (unsigned long long)seed, c);
		int best[3] = {0, 0, 0}, events = 0;
		for (size_t i = 0; i < n; i++) {
			best[pts[i].best]++;
			events += pts[i].rfs_event;
			CHECK(pts[i].lp[pts[i].best] <= pts[i].lp[0] && pts[i].lp[pts[i].best] <= pts[i].lp[2]);
		}
		for (int k = 0; k < 3; k++) CHECK_MSG(best[k] >= 16, "best regimen %d in only %d of 320", k, best[k]);
		CHECK(events > 100 && events < 300); /* censoring happens, but not to everyone */
		free(pts);
	}
}

/* Issue 3, item 6: regimen effects depend on the TME (inflamed tumours gain
 * most from TACE+TKI) and assignment is confounded by indication. */
FP_TEST(tme_drives_benefit_and_assignment_is_confounded)
{
	struct fp_synth_params p;
	fp_synth_params_default(&p);
	p.centres = 8;
	p.patients = 200;
	struct fp_synth_patient *pts = NULL;
	size_t n = 0;
	CHECK_OK(fp_synth_draw_cohort(&p, &pts, &n));
	double gain[3] = {0, 0, 0};
	int nph[3] = {0, 0, 0}, tki[2] = {0, 0}, nmvi[2] = {0, 0};
	for (size_t i = 0; i < n; i++) {
		gain[pts[i].phenotype] += pts[i].lp[FP_SYNTH_TACE] - pts[i].lp[FP_SYNTH_TACE_TKI];
		nph[pts[i].phenotype]++;
		tki[pts[i].mvi] += pts[i].regimen == FP_SYNTH_TACE_TKI;
		nmvi[pts[i].mvi]++;
	}
	for (int k = 0; k < 3; k++) CHECK(nph[k] > 0);
	double g_inf = gain[FP_SYNTH_INFLAMED] / nph[0], g_des = gain[FP_SYNTH_DESERT] / nph[2];
	CHECK_MSG(g_inf > 0.5 && g_des < 0, "TKI gain inflamed %.2f, desert %.2f", g_inf, g_des);
	double r1 = (double)tki[1] / nmvi[1], r0 = (double)tki[0] / nmvi[0];
	CHECK_MSG(r1 > r0 + 0.1, "TACE+TKI share with MVI %.2f vs without %.2f", r1, r0);
	free(pts);
}

static int count_char(const char *s, char c)
{
	int k = 0;
	for (; *s; s++) k += *s == c;
	return k;
}

/* fp_synth.h: "fp_synth_draw_cohort() returns exactly the patients ... that
 * fp_synth_generate() writes"; clinical.csv follows docs/CLINICAL_SCHEMA.md. */
FP_TEST(clinical_csv_follows_the_schema_and_matches_the_draw)
{
	struct fp_synth_params p;
	tiny_params(&p, 2, 3);
	p.missing_rate = 0.2;
	char dir[2048], path[4096];
	snprintf(dir, sizeof dir, "%s/out", fp_test_tmpdir());
	CHECK_OK(fp_synth_generate(&p, dir, NULL));
	struct fp_synth_patient *pts = NULL;
	size_t n = 0;
	CHECK_OK(fp_synth_draw_cohort(&p, &pts, &n));
	snprintf(path, sizeof path, "%s/H02/clinical.csv", dir);
	size_t len;
	char *csv = read_file(path, &len);
	CHECK(csv != NULL);
	const char *header = "patient_id,centre,slide_file,age,sex,tnm_stage,child_pugh,afp_ng_ml,tumour_size_cm,"
	                     "mvi,edmondson_grade,regimen,rfs_months,rfs_event,os_months,os_event,orr\n";
	CHECK(strncmp(csv, header, strlen(header)) == 0);
	char *line = csv + strlen(header);
	for (int i = 0; i < 3; i++) {
		const struct fp_synth_patient *pt = &pts[3 + i];
		char *end = strchr(line, '\n');
		CHECK(end != NULL);
		*end = '\0';
		CHECK_INT_EQ(count_char(line, ','), 16);
		char prefix[128];
		snprintf(prefix, sizeof prefix, "%s,H02,%s,", pt->patient_id, pt->slide_file);
		CHECK(strncmp(line, prefix, strlen(prefix)) == 0);
		CHECK_STR_CONTAINS(line, fp_synth_regimen_name(pt->regimen));
		char rfs[64];
		snprintf(rfs, sizeof rfs, ",%.2f,%d,%.2f,%d,", pt->rfs_months, pt->rfs_event, pt->os_months, pt->os_event);
		CHECK_STR_CONTAINS(line, rfs);
		CHECK(pt->rfs_months > 0 && pt->rfs_months <= 60.0 && pt->os_months >= pt->rfs_months);
		CHECK((pt->orr < 0) == (pt->regimen == FP_SYNTH_SURGERY));
		snprintf(path, sizeof path, "%s/H02/slides/%s", dir, pt->slide_file);
		CHECK(exists(path));
		line = end + 1;
	}
	CHECK(*line == '\0');
	free(csv);
	free(pts);

	/* value domains and the missing rate over a larger draw */
	tiny_params(&p, 4, 250);
	p.missing_rate = 0.2;
	CHECK_OK(fp_synth_draw_cohort(&p, &pts, &n));
	int missing_age = 0;
	for (size_t i = 0; i < n; i++) {
		CHECK(pts[i].age >= 18 && pts[i].age <= 100);
		CHECK(pts[i].sex == 'M' || pts[i].sex == 'F');
		CHECK(pts[i].tnm_stage >= 0 && pts[i].tnm_stage <= 4);
		CHECK(pts[i].afp_ng_ml >= 0 && pts[i].afp_ng_ml <= 1e6);
		CHECK(pts[i].tumour_size_cm >= 0.1 && pts[i].tumour_size_cm <= 30);
		CHECK(pts[i].edmondson_grade >= 1 && pts[i].edmondson_grade <= 4);
		missing_age += (pts[i].missing & FP_SYNTH_MISS_AGE) != 0;
	}
	CHECK_MSG(missing_age > 0.2 * 1000 * 0.6 && missing_age < 0.2 * 1000 * 1.4, "missing ages %d of 1000", missing_age);
	free(pts);
}

/* Issue 3, item 3: the truth class map is saved per slide, at low resolution. */
FP_TEST(class_map_is_a_framed_file_with_the_slide_geometry)
{
	struct fp_synth_params p;
	tiny_params(&p, 1, 2);
	char dir[2048], path[4096];
	snprintf(dir, sizeof dir, "%s/out", fp_test_tmpdir());
	CHECK_OK(fp_synth_generate(&p, dir, NULL));
	snprintf(path, sizeof path, "%s/truth/classmaps/H01-P0001.classmap", dir);
	void *payload = NULL;
	size_t len = 0;
	uint32_t version = 0;
	CHECK_OK(fp_file_read_framed(path, FP_SYNTH_CLASSMAP_MAGIC, 1, 64u << 20, &version, &payload, &len));
	const uint8_t *b = payload;
	uint32_t mw = b[0] | b[1] << 8 | (uint32_t)b[2] << 16, mh = b[4] | b[5] << 8 | (uint32_t)b[6] << 16;
	uint32_t w = b[8] | b[9] << 8 | (uint32_t)b[10] << 16;
	CHECK_INT_EQ(version, 1);
	CHECK_INT_EQ(len, 40 + (size_t)mw * mh);
	CHECK_INT_EQ(mw, 63);   /* 1000 um / 16 um, rounded up */
	CHECK_INT_EQ(w, 2000);  /* H01 scans at 0.5 um/px */
	int seen[FP_SYNTH_N_CLASSES] = {0};
	for (size_t i = 40; i < len; i++) {
		CHECK(b[i] < FP_SYNTH_N_CLASSES);
		seen[b[i]]++;
	}
	CHECK(seen[FP_SYNTH_BACKGROUND] > 0 && seen[FP_SYNTH_TUMOUR] > 0 && seen[FP_SYNTH_LIVER] > 0 &&
	      seen[FP_SYNTH_STROMA] > 0);
	free(payload);
}

/* Issue 3, items 1-2 and 5, read back through data/'s own readers: every
 * clinical.csv passes the schema loader (docs/CLINICAL_SCHEMA.md) and every
 * slide opens as Aperio with the centre's mpp; --format tiff as generic. */
FP_TEST(cohort_reads_back_through_the_clinical_loader_and_slide_reader)
{
	for (int fmt = 0; fmt < 2; fmt++) {
		struct fp_synth_params p;
		tiny_params(&p, 2, 2);
		p.format = fmt ? FP_SYNTH_TIFF : FP_SYNTH_SVS;
		p.missing_rate = 0.3; /* empty cells must load as missing values */
		char dir[2048], path[4096];
		snprintf(dir, sizeof dir, "%s/out%d", fp_test_tmpdir(), fmt);
		CHECK_OK(fp_synth_generate(&p, dir, NULL));
		for (int c = 1; c <= 2; c++) {
			snprintf(path, sizeof path, "%s/H%02d/clinical.csv", dir, c);
			struct fp_clinical *tab = NULL;
			CHECK_OK(fp_clinical_load(path, stderr, &tab));
			CHECK_INT_EQ(fp_clinical_count(tab), 2);
			for (size_t i = 0; i < 2; i++) {
				const struct fp_clinical_row *row = fp_clinical_row(tab, i);
				CHECK_INT_EQ(row->n_slides, 1);
				char slide[4096];
				CHECK_OK(fp_clinical_slide_path(tab, row->slides[0], slide, sizeof slide));
				struct fp_slide *s = NULL;
				CHECK_OK(fp_slide_open(slide, NULL, &s));
				CHECK_STR_EQ(fp_slide_vendor_name(s), fmt ? "generic" : "aperio");
				CHECK_NEAR(fp_slide_mpp(s), c == 1 ? 0.5 : 0.25, 1e-6, 0);
				CHECK_INT_EQ(fp_slide_level_count(s), 2);
				CHECK_INT_EQ(fp_slide_level(s, 1)->width, fp_slide_level(s, 0)->width / 4);
				fp_slide_destroy(s);
			}
			fp_clinical_destroy(tab);
		}
	}
}
