/*
 * test_trainers.c: the Part 2 local-training adapter (federate/fp_trainers.h)
 * and the Part 2 checkpoint (train/fp_part2_ckpt.h), on a phantom cohort.
 *
 * Part 1: the adapter on a tiny rendered phantom centre, tiled here.
 * TEST ONLY: features.csv here holds the phantom's true TME quantities
 * (fp_synth_draw_cohort), keyed by patient_id, as a stand-in for the
 * features `fedpath quantify` derives from slides.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_common.h"
#include "fp_part2_ckpt.h"
#include "fp_site_train.h"
#include "fp_synth.h"
#include "fp_test.h"
#include "fp_tile.h"
#include "fp_trainers.h"

#define CENTRES 2
#define PATIENTS 60

/* Writes DIR/<centre>/clinical.csv and features.csv for each centre. */
static void write_cohort(const char *dir)
{
	struct fp_synth_params sp;
	struct fp_synth_patient *pts = NULL;
	size_t n = 0;
	fp_synth_params_default(&sp);
	sp.centres = CENTRES;
	sp.patients = PATIENTS;
	sp.seed = 5;
	CHECK_OK(fp_synth_draw_cohort(&sp, &pts, &n));
	for (int c = 0; c < CENTRES; c++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, pts[c * PATIENTS].centre);
		CHECK_OK(fp_mkdir_p(path, 0755));
		snprintf(path, sizeof path, "%s/%s/clinical.csv", dir, pts[c * PATIENTS].centre);
		FILE *f = fopen(path, "w");
		CHECK(f != NULL);
		fprintf(f, "patient_id,centre,slide_file,age,sex,tnm_stage,child_pugh,afp_ng_ml,tumour_size_cm,mvi,"
		           "edmondson_grade,regimen,rfs_months,rfs_event,os_months,os_event\n");
		for (int i = 0; i < PATIENTS; i++) {
			const struct fp_synth_patient *p = &pts[c * PATIENTS + i];
			/* one missing AFP, so a missing indicator column exists */
			char afp[32] = "";
			if (!(c == 0 && i == 3)) snprintf(afp, sizeof afp, "%.1f", p->afp_ng_ml);
			fprintf(f, "%s,%s,%s,%.0f,%c,%s,%c,%s,%.1f,%d,%d,%s,%.2f,%d,%.2f,%d\n", p->patient_id, p->centre,
			        p->slide_file, p->age, p->sex, fp_synth_stage_name(p->tnm_stage), p->child_pugh_b ? 'B' : 'A',
			        afp, p->tumour_size_cm, p->mvi, p->edmondson_grade, fp_synth_regimen_name(p->regimen),
			        p->rfs_months, p->rfs_event, p->os_months, p->os_event);
		}
		fclose(f);
		snprintf(path, sizeof path, "%s/%s/features.csv", dir, pts[c * PATIENTS].centre);
		f = fopen(path, "w");
		CHECK(f != NULL);
		fprintf(f, "patient_id,n_tiles,phenotype,til_intra,til_margin,stroma_frac,necrosis_frac\n");
		for (int i = 0; i < PATIENTS; i++) {
			const struct fp_synth_patient *p = &pts[c * PATIENTS + i];
			fprintf(f, "%s,%d,%s,%.4f,%.4f,%.4f,%.4f\n", p->patient_id, 100 + i, fp_synth_phenotype_name(p->phenotype),
			        p->til_intra, p->til_margin, p->stroma_frac, p->necrosis_frac);
		}
		fclose(f);
	}
	free(pts);
}

struct fed {
	struct fp_p2_table tab[CENTRES];
	struct fp_p2_stats pooled;
	struct fp_p2_trainer *tr[CENTRES], *coord;
	struct fp_local_trainer lt[CENTRES], lc;
	struct fp_part2_config cfg;
};

static void fed_open(struct fed *f, const char *dir)
{
	static const char *const sites[CENTRES] = {"H01", "H02"};
	memset(f, 0, sizeof *f);
	for (int c = 0; c < CENTRES; c++) {
		char clin[4096], feat[4096];
		snprintf(clin, sizeof clin, "%s/%s/clinical.csv", dir, sites[c]);
		snprintf(feat, sizeof feat, "%s/%s/features.csv", dir, sites[c]);
		CHECK_OK(fp_p2_site_load(clin, feat, sites[c], &f->tab[c]));
		struct fp_p2_stats s;
		fp_p2_stats_local(&f->tab[c], &s);
		CHECK_OK(fp_p2_stats_merge(&f->pooled, &s));
	}
	fp_part2_config_default(&f->cfg);
	f->cfg.hidden = 8;
	f->cfg.steps = 15;
	for (int c = 0; c < CENTRES; c++) {
		CHECK_OK(fp_p2_trainer_create(&f->tab[c], &f->pooled, &f->cfg, &f->tr[c]));
		fp_p2_trainer_local(f->tr[c], &f->lt[c]);
	}
	CHECK_OK(fp_p2_trainer_create(NULL, &f->pooled, &f->cfg, &f->coord));
	fp_p2_trainer_local(f->coord, &f->lc);
}

static void fed_close(struct fed *f)
{
	for (int c = 0; c < CENTRES; c++) {
		fp_p2_trainer_destroy(f->tr[c]);
		fp_p2_table_close(&f->tab[c]);
	}
	fp_p2_trainer_destroy(f->coord);
}

static double norm2(const float *x, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
	return sqrt(s);
}

/* The site tables, the coordinator's view of the columns, and one FedAvg
 * round: every site answers with a finite delta from its patients; the same
 * weights give the same delta; FedProx pulls the delta in. */
FP_TEST(part2_adapter_round)
{
	static struct fed f;
	write_cohort(fp_test_tmpdir());
	fed_open(&f, fp_test_tmpdir());
	CHECK_INT_EQ(f.tab[0].n, PATIENTS);
	/* 11 clinical + phenotype (2 dummies) + 4 TME; n_tiles dropped */
	CHECK_INT_EQ(f.tab[0].p, 11 + 2 + 4);
	CHECK_STR_EQ(f.tab[0].names[11], "phenotype_inflamed");
	CHECK_INT_EQ(f.pooled.n_patients, CENTRES * PATIENTS);
	int w = fp_p2_design_width(&f.pooled);
	CHECK(w > f.pooled.p); /* the missing AFP gives an indicator */
	/* the coordinator, without rows, agrees on size and column names */
	CHECK_INT_EQ(f.lc.n_params, f.lt[0].n_params);
	for (int j = 0; j < w; j++) CHECK_STR_EQ(fp_p2_trainer_names(f.coord)[j], fp_p2_trainer_names(f.tr[1])[j]);
	size_t n = f.lc.n_params;
	float *w0 = calloc(n, sizeof(float)), *u[3], *w1 = calloc(n, sizeof(float));
	for (int i = 0; i < 3; i++) u[i] = calloc(n, sizeof(float));
	CHECK_OK(f.lc.init_weights(f.lc.ctx, w0));
	struct fp_study_plan plan = {0};
	plan.local_epochs = 1;
	plan.local_steps = 0;
	uint64_t ns = 0, total = 0;
	double loss = NAN;
	for (int c = 0; c < CENTRES; c++) {
		CHECK_OK(f.lt[c].train(f.lt[c].ctx, w0, 1, &plan, u[c], &ns, &loss));
		CHECK_INT_EQ(ns, PATIENTS);
		CHECK(isfinite(loss) && loss > 0);
		CHECK(norm2(u[c], n) > 1e-4);
		for (size_t i = 0; i < n; i++) w1[i] += (float)ns * u[c][i];
		total += ns;
	}
	/* replaying site 0's round from the same weights is bit-identical */
	CHECK_OK(f.lt[0].train(f.lt[0].ctx, w0, 1, &plan, u[2], &ns, &loss));
	CHECK(memcmp(u[0], u[2], n * sizeof(float)) == 0);
	/* FedProx: a strong pull towards the global weights shrinks the update */
	plan.fedprox_mu = 10;
	CHECK_OK(f.lt[0].train(f.lt[0].ctx, w0, 1, &plan, u[2], &ns, &loss));
	CHECK_MSG(norm2(u[2], n) < 0.8 * norm2(u[0], n), "mu 10: |u| %g vs mu 0: %g", norm2(u[2], n), norm2(u[0], n));
	/* the second round from the FedAvg model still trains */
	for (size_t i = 0; i < n; i++) w1[i] = w0[i] + w1[i] / (float)total;
	plan.fedprox_mu = 0;
	CHECK_OK(f.lt[1].train(f.lt[1].ctx, w1, 2, &plan, u[2], &ns, &loss));
	CHECK(isfinite(loss));
	/* Breslow baseline of a site's stratum: finite, non-decreasing in t */
	double h0[FP_P2_N_HORIZONS];
	CHECK_OK(fp_p2_trainer_baseline(f.tr[0], w1, h0));
	CHECK(h0[0] >= 0 && h0[1] >= h0[0] && h0[2] >= h0[1] && isfinite(h0[2]));
	/* the coordinator has no patients to train on */
	CHECK_STATUS(f.lc.train(f.lc.ctx, w0, 1, &plan, u[2], &ns, &loss), FP_ERR_STATE);
	for (int i = 0; i < 3; i++) free(u[i]);
	free(w0);
	free(w1);
	fed_close(&f);
}

/* A features.csv with the wrong id column or a non-number is refused,
 * naming the file and line. */
FP_TEST(features_refused)
{
	char dir[4096], clin[4200], feat[4200];
	struct fp_p2_table t;
	snprintf(dir, sizeof dir, "%s", fp_test_tmpdir());
	write_cohort(dir);
	snprintf(clin, sizeof clin, "%s/H01/clinical.csv", dir);
	snprintf(feat, sizeof feat, "%s/bad.csv", dir);
	FILE *f = fopen(feat, "w");
	fprintf(f, "slide,til_intra\nx,0.5\n");
	fclose(f);
	CHECK_STATUS(fp_p2_site_load(clin, feat, "H01", &t), FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "slide_uid or patient_id");
	f = fopen(feat, "w");
	fprintf(f, "patient_id,til_intra\nH01-P0001,0.5\nH01-P0002,lots\n");
	fclose(f);
	CHECK_STATUS(fp_p2_site_load(clin, feat, "H01", &t), FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "bad.csv:3");
}

static void make_ckpt(struct fed *f, struct fp_p2_ckpt *ck)
{
	memset(ck, 0, sizeof *ck);
	ck->cfg = f->cfg;
	ck->pooled = f->pooled;
	ck->p = fp_p2_design_width(&f->pooled);
	ck->names = calloc((size_t)ck->p, FP_P2_NAME_MAX);
	memcpy(ck->names, fp_p2_trainer_names(f->coord), (size_t)ck->p * FP_P2_NAME_MAX);
	ck->n_params = f->lc.n_params;
	ck->params = calloc(ck->n_params, sizeof(float));
	CHECK_OK(f->lc.init_weights(f->lc.ctx, ck->params));
	ck->params[0] = 1.0f / 3.0f; /* a value with no short decimal form */
	ck->n_sites = CENTRES;
	ck->sites = calloc(CENTRES, sizeof *ck->sites);
	ck->h0 = calloc(CENTRES, sizeof *ck->h0);
	for (int c = 0; c < CENTRES; c++) {
		snprintf(ck->sites[c], sizeof ck->sites[0], "H0%d", c + 1);
		CHECK_OK(fp_p2_trainer_baseline(f->tr[c], ck->params, ck->h0[c]));
	}
	ck->rounds = 4;
}

/* Rewrites the checkpoint's JSON with one substring replaced, as a valid
 * framed file (so only the reader's own checks can catch it). */
static void tamper(const char *path, const char *from, const char *to)
{
	static const char magic[FP_FRAME_MAGIC_SIZE] = {'F', 'P', 'P', '2', 'C', 'K', 'P', 'T'};
	void *payload = NULL;
	size_t len = 0;
	uint32_t ver = 0;
	CHECK_OK(fp_file_read_framed(path, magic, 1, (size_t)1 << 30, &ver, &payload, &len));
	char *text = calloc(len + strlen(to) + 1, 1);
	memcpy(text, payload, len);
	char *at = strstr(text, from);
	CHECK_MSG(at != NULL, "'%s' not in the checkpoint", from);
	char *tail = strdup(at + strlen(from));
	strcpy(at, to);
	strcat(text, tail);
	CHECK_OK(fp_file_commit_framed(path, magic, 1, text, strlen(text), 0644));
	free(tail);
	free(text);
	free(payload);
}

FP_TEST(checkpoint_round_trip_and_refusals)
{
	static struct fed f;
	struct fp_p2_ckpt ck, back;
	char path[4096];
	write_cohort(fp_test_tmpdir());
	fed_open(&f, fp_test_tmpdir());
	make_ckpt(&f, &ck);
	snprintf(path, sizeof path, "%s/m.ckpt", fp_test_tmpdir());
	CHECK_OK(fp_p2_ckpt_save(&ck, path));
	CHECK_OK(fp_p2_ckpt_load(path, &back));
	CHECK_STR_EQ(back.model_hash, ck.model_hash);
	CHECK_INT_EQ(back.n_params, ck.n_params);
	CHECK(memcmp(back.params, ck.params, ck.n_params * sizeof(float)) == 0);
	CHECK_INT_EQ(back.cfg.hidden, f.cfg.hidden);
	CHECK_INT_EQ(back.cfg.steps, f.cfg.steps);
	CHECK(back.cfg.margin == f.cfg.margin && back.cfg.lr == f.cfg.lr);
	CHECK_INT_EQ(back.p, ck.p);
	for (int j = 0; j < ck.p; j++) CHECK_STR_EQ(back.names[j], ck.names[j]);
	CHECK_INT_EQ(back.pooled.p, f.pooled.p);
	CHECK_INT_EQ(back.pooled.n_patients, f.pooled.n_patients);
	for (int j = 0; j < f.pooled.p; j++) {
		CHECK_STR_EQ(back.pooled.names[j], f.pooled.names[j]);
		CHECK(back.pooled.sum[j] == f.pooled.sum[j] && back.pooled.sumsq[j] == f.pooled.sumsq[j] &&
		      back.pooled.count[j] == f.pooled.count[j]);
	}
	CHECK_INT_EQ(back.n_sites, CENTRES);
	CHECK_STR_EQ(back.sites[1], "H02");
	for (int q = 0; q < FP_P2_CKPT_HORIZONS; q++) CHECK(back.h0[1][q] == ck.h0[1][q]);
	CHECK_INT_EQ(back.rounds, 4);
	fp_p2_ckpt_close(&back);

	/* a configuration that does not fit the parameters */
	char from[64], to[64];
	snprintf(from, sizeof from, "\"hidden\": %d", f.cfg.hidden);
	snprintf(to, sizeof to, "\"hidden\": %d", f.cfg.hidden + 1);
	tamper(path, from, to);
	CHECK_STATUS(fp_p2_ckpt_load(path, &back), FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "configuration does not match the parameters");
	/* one parameter changed: the model hash refuses it */
	CHECK_OK(fp_p2_ckpt_save(&ck, path));
	tamper(path, "\"params\": \"0.333333343", "\"params\": \"0.333333");
	CHECK_STATUS(fp_p2_ckpt_load(path, &back), FP_ERR_CHECKSUM);
	CHECK_STR_CONTAINS(fp_error_msg(), "the file says model");
	/* design columns that the statistics do not give */
	CHECK_OK(fp_p2_ckpt_save(&ck, path));
	tamper(path, "\"design_columns\": [\n  \"age\"", "\"design_columns\": [\n  \"AGE\"");
	CHECK_STATUS(fp_p2_ckpt_load(path, &back), FP_ERR_FORMAT);
	CHECK_STR_CONTAINS(fp_error_msg(), "design column 1 is 'AGE'");
	/* a damaged byte: the frame's checksum */
	CHECK_OK(fp_p2_ckpt_save(&ck, path));
	FILE *fp = fopen(path, "r+b");
	fseek(fp, 200, SEEK_SET);
	fputc('#', fp);
	fclose(fp);
	CHECK(fp_p2_ckpt_load(path, &back) != FP_OK);
	fp_p2_ckpt_close(&ck);
	fed_close(&f);
}

/* A tiny rendered phantom centre H01 (2 patients) in DIR/cohort, tiled
 * into DIR/caches with a manifest; uids[i] is patient i+1's slide uid. */
static void tiled_centre(char uids[2][65])
{
	char cohort[4096], caches[4096], slide[4200], mpath[4200];
	struct fp_synth_params sp;
	fp_synth_params_default(&sp);
	sp.size = FP_SYNTH_TINY;
	sp.centres = 1;
	sp.patients = 2;
	sp.threads = 1;
	sp.quiet = 1;
	snprintf(cohort, sizeof cohort, "%s/cohort", fp_test_tmpdir());
	snprintf(caches, sizeof caches, "%s/caches", fp_test_tmpdir());
	CHECK_OK(fp_synth_generate(&sp, cohort, NULL));
	struct fp_tile_params tp;
	fp_tile_params_default(&tp);
	snprintf(tp.site_id, sizeof tp.site_id, "H01");
	tp.target_mpp = 1.0;
	tp.tile_size = 64;
	CHECK_OK(fp_mkdir_p(caches, 0755));
	snprintf(mpath, sizeof mpath, "%s/manifest.jsonl", caches);
	FILE *mf = fopen(mpath, "w"); /* the two fields truth labelling reads, as `fedpath tile` writes them */
	CHECK(mf != NULL);
	for (int i = 1; i <= 2; i++) {
		struct fp_tile_result tr;
		snprintf(slide, sizeof slide, "%s/H01/slides/H01-P%04d.svs", cohort, i);
		CHECK_OK(fp_tile_slide(slide, caches, &tp, &tr));
		fprintf(mf, "{\"slide_uid\":\"%s\",\"slide\":\"%s\"}\n", tr.slide_uid, slide);
		memcpy(uids[i - 1], tr.slide_uid, 65);
	}
	fclose(mf);
}

/* features.csv as quantify writes it (slide_uid rows) is linked to the
 * patients through the uid `fedpath tile --site H01` gave each slide. */
FP_TEST(features_linked_by_slide_uid)
{
	char uids[2][65], clin[4200], feat[4200];
	tiled_centre(uids);
	snprintf(clin, sizeof clin, "%s/cohort/H01/clinical.csv", fp_test_tmpdir());
	snprintf(feat, sizeof feat, "%s/features.csv", fp_test_tmpdir());
	FILE *f = fopen(feat, "w");
	fprintf(f, "slide_uid,n_tiles,vi_score,phenotype\n%s,10,2.5,excluded\n%s,12,0.5,none\n0123abcd,1,9,desert\n",
	        uids[1], uids[0]);
	fclose(f);
	struct fp_p2_table t;
	CHECK_OK(fp_p2_site_load(clin, feat, "H01", &t));
	CHECK_INT_EQ(t.n, 2);
	CHECK_INT_EQ(t.n_without_features, 0);
	CHECK_INT_EQ(t.p, 11 + 3);
	CHECK_STR_EQ(t.names[11], "vi_score");
	CHECK_STR_EQ(t.patient[0], "H01-P0001");
	CHECK(t.x[0 * t.p + 11] == 0.5 && isnan(t.x[0 * t.p + 12]));
	CHECK(t.x[1 * t.p + 11] == 2.5 && t.x[1 * t.p + 12] == 0 && t.x[1 * t.p + 13] == 1);
	fp_p2_table_close(&t);
	/* under another site id the uids differ: nobody gets features */
	CHECK_OK(fp_p2_site_load(clin, feat, "H02", &t));
	CHECK_INT_EQ(t.n_without_features, 2);
	fp_p2_table_close(&t);
}

/* Part 1: a phantom centre's tile caches labelled from the truth class maps;
 * a round from the same weights replays bit-identically, trains on every
 * labelled tile as the FedAvg weight, and FedProx pulls the update in. */
FP_TEST(part1_adapter_round)
{
	char uids[2][65];
	tiled_centre(uids);
	static struct fp_train_config c;
	CHECK_OK(fp_config_defaults(&fp_train_schema, &c));
	snprintf(c.data_dir, sizeof c.data_dir, "%s", fp_test_tmpdir());
	snprintf(c.caches, sizeof c.caches, "caches");
	snprintf(c.truth_dir, sizeof c.truth_dir, "cohort/truth");
	c.labels = FP_LABELS_TRUTH;
	c.input_size = 16;
	c.width1 = 4;
	c.width2 = 8;
	c.width3 = 8;
	c.blocks = 1;
	c.groups = 2;
	c.batch = 8;
	c.threads = 1;
	struct fp_p1_trainer *t = NULL;
	struct fp_local_trainer lt;
	CHECK_OK(fp_p1_trainer_create(&c, &t));
	fp_p1_trainer_local(t, &lt);
	size_t n = lt.n_params;
	float *w0 = malloc(n * sizeof(float)), *u[3];
	for (int i = 0; i < 3; i++) u[i] = malloc(n * sizeof(float));
	CHECK_OK(lt.init_weights(lt.ctx, w0));
	struct fp_study_plan plan = {0};
	plan.local_epochs = 1;
	plan.local_steps = 3;
	uint64_t ns = 0;
	double loss = NAN;
	CHECK_OK(lt.train(lt.ctx, w0, 1, &plan, u[0], &ns, &loss));
	CHECK(ns > 8 && isfinite(loss) && loss > 0);
	CHECK(norm2(u[0], n) > 0);
	CHECK_OK(lt.train(lt.ctx, w0, 1, &plan, u[1], &ns, &loss));
	CHECK(memcmp(u[0], u[1], n * sizeof(float)) == 0);
	plan.fedprox_mu = 50;
	CHECK_OK(lt.train(lt.ctx, w0, 1, &plan, u[2], &ns, &loss));
	CHECK_MSG(norm2(u[2], n) < norm2(u[0], n), "mu 50: |u| %g vs mu 0: %g", norm2(u[2], n), norm2(u[0], n));
	for (int i = 0; i < 3; i++) free(u[i]);
	free(w0);
	fp_p1_trainer_destroy(t);
}
