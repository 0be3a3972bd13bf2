/*
 * tune_run.c - the runner: each trial a trainer process (fork and exec of
 * the study's command with the trial's options), `jobs` at a time, its
 * TSV log read as it grows for the pruners, SIGTERM to stop it (mura-train
 * then writes its checkpoint, from which ASHA resumes a promoted trial and
 * a new mura-tune a trial its killed predecessor left running).
 *
 * A trial's command: PROG --out DIR/trial-N/model.safetensors --log
 * DIR/trial-N/log.tsv --threads T --epochs E --NAME VALUE ... ARGS, and to
 * resume, --resume DIR/trial-N/model.ckpt.safetensors after PROG (ARGS
 * without --weights, which mura-train refuses beside --resume).  The
 * process runs in a process group of its own, so a Ctrl-C reaches
 * mura-tune alone, which then stops each trial once; it gets SIGTERM if
 * mura-tune dies (Linux's PR_SET_PDEATHSIG), so a kill -9 of mura-tune
 * leaves checkpoints, not orphans training on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "tune.h"
#include "util.h"

struct runner {
	struct mura_tune_study *s;
	const struct mura_tune_run *r;
	int running;
	int *resume;         /* trials to resume (left running), in order */
	int nresume;
	int failed;
	int dirty;           /* the journal is behind */
};

static void
say(struct runner *u, int ev, int trial, const char *fmt, ...)
{
	char msg[512] = "";
	va_list ap;

	if (!u->r->report)
		return;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof msg, fmt, ap);
		va_end(ap);
	}
	u->r->report(u->r->report_arg, ev, trial >= 0 ? &u->s->t[trial] : NULL, msg);
}

static void
trial_path(char *buf, size_t len, const struct mura_tune_study *s, int n, const char *name)
{
	snprintf(buf, len, "%s/trial-%d%s%s", s->dir, n, name ? "/" : "", name ? name : "");
}

/* The trainer's log: the rows after the ones the trial holds, pushed (up
 * to the epoch where a pruner stopped it: t->stopping).  The pruner runs
 * after each new epoch.  Returns 0, or -1 with mura_error set. */
static int read_log(struct runner *u, int i);

static int
start(struct runner *u, int i, int resume)
{
	struct mura_tune_study *s = u->s;
	struct mura_tune_trial *t = &s->t[i];
	char *argv[MURA_TUNE_MAX_ARGS + 2 * MURA_TUNE_MAX_PARAMS + 16];
	char dir[4200], out[4300], log[4300], ckpt[4300], err[4300], thr[16], ep[16];
	char val[MURA_TUNE_MAX_PARAMS][64], opt[MURA_TUNE_MAX_PARAMS][40];
	int a = 0, fd;
	pid_t pid, parent = getpid();
	struct stat st;

	trial_path(dir, sizeof dir, s, t->number, NULL);
	trial_path(out, sizeof out, s, t->number, "model.safetensors");
	trial_path(log, sizeof log, s, t->number, "log.tsv");
	trial_path(ckpt, sizeof ckpt, s, t->number, "model.ckpt.safetensors");
	trial_path(err, sizeof err, s, t->number, "stderr");
	if (mura_mkdirs(dir, 0777) < 0)
		return -1;
	if (resume && stat(ckpt, &st) < 0)
		resume = 0;  /* it never wrote one: from the start again */
	snprintf(thr, sizeof thr, "%d", u->r->threads);
	snprintf(ep, sizeof ep, "%d", s->set.epochs);
	argv[a++] = s->argv[0];
	if (resume) {
		argv[a++] = "--resume";
		argv[a++] = ckpt;
	}
	argv[a++] = "--out", argv[a++] = out;
	argv[a++] = "--log", argv[a++] = log;
	argv[a++] = "--threads", argv[a++] = thr;
	argv[a++] = "--epochs", argv[a++] = ep;
	for (int k = 0; k < s->space.n; k++) {
		snprintf(opt[k], sizeof opt[k], "--%s", s->space.p[k].name);
		mura_tune_value_format(&s->space.p[k], t->x[k], val[k], sizeof val[k]);
		argv[a++] = opt[k], argv[a++] = val[k];
	}
	for (int k = 1; k < s->argc; k++) {
		const char *w = s->argv[k];
		if (resume && (!strcmp(w, "--weights") || !strcmp(w, "-w"))) {
			k++;
			continue;
		}
		if (resume && (!strncmp(w, "--weights=", 10) || (!strncmp(w, "-w", 2) && w[2])))
			continue;
		argv[a++] = s->argv[k];
	}
	argv[a] = NULL;

	if ((fd = open(err, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666)) < 0)
		return mura_error("%s: %s", err, strerror(errno));
	if ((pid = fork()) < 0) {
		close(fd);
		return mura_error("fork: %s", strerror(errno));
	}
	if (!pid) {
		sigset_t none;
		int nul = open("/dev/null", O_RDONLY);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		setpgid(0, 0);
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
			_exit(127);
		if (nul < 0 || dup2(nul, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		execvp(argv[0], argv);
		dprintf(2, "mura-tune: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fd);
	t->pid = pid;
	t->state = MURA_TUNE_RUNNING;
	t->stopping = 0;
	u->running++;
	if (mura_tune_journal_write(s) < 0)
		return -1;
	say(u, resume ? MURA_TUNE_EV_RESUME : MURA_TUNE_EV_START, i, NULL);
	return 0;
}

static void
stop_trial(struct runner *u, int i, int why)
{
	struct mura_tune_trial *t = &u->s->t[i];

	t->stopping = why;
	if (t->pid > 0)
		kill((pid_t)t->pid, SIGTERM);
}

/* The pruners, after epoch `e` of trial i. */
static void
judge(struct runner *u, int i, int e)
{
	struct mura_tune_study *s = u->s;
	struct mura_tune_trial *t = &s->t[i];

	if (s->set.pruner == MURA_TUNE_MEDIAN) {
		if (mura_tune_median_prune(s, t, e))
			stop_trial(u, i, MURA_TUNE_PRUNED);
	} else if (s->set.pruner == MURA_TUNE_ASHA) {
		int re = mura_tune_asha_rung_epoch(&s->set, t->rung);
		if (re && e == re) {
			t->rung++;
			if (!mura_tune_asha_promotable(s, t, t->rung - 1))
				stop_trial(u, i, MURA_TUNE_PAUSED);
		}
	}
}

static int
read_log(struct runner *u, int i)
{
	struct mura_tune_study *s = u->s;
	struct mura_tune_trial *t = &s->t[i];
	char path[4300], line[4096];
	int col = -1, ecol = -1, row = 0;
	FILE *f;

	trial_path(path, sizeof path, s, t->number, "log.tsv");
	if (!(f = fopen(path, "r")))
		return errno == ENOENT ? 0 : mura_error("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof line, f)) {
		char *fld[64], *p = line;
		int n = 0;
		double v;
		long e;
		line[strcspn(line, "\n")] = 0;
		for (; p && n < 64; n++) {
			fld[n] = p;
			if ((p = strchr(p, '\t')))
				*p++ = 0;
		}
		if (col < 0) {
			for (int k = 0; k < n; k++) {
				if (!strcmp(fld[k], s->set.metric))
					col = k;
				if (!strcmp(fld[k], "epoch"))
					ecol = k;
			}
			if (col < 0 || ecol < 0) {
				fclose(f);
				return mura_error("%s: no column '%s' and 'epoch' in its header", path,
				                  col < 0 ? s->set.metric : "epoch");
			}
			continue;
		}
		row++;
		if (col >= n || mura_parse_long(fld[ecol], 1, 1 << 30, &e) < 0 || e != row) {
			fclose(f);
			return mura_error("%s: row %d: not epoch %d with a %s", path, row, row, s->set.metric);
		}
		if (row <= t->epochs || t->stopping)
			continue;
		if (!strcmp(fld[col], "n/a") || !strcmp(fld[col], "nan"))
			v = NAN;
		else if (mura_parse_double(fld[col], -1e300, 1e300, &v) < 0) {
			fclose(f);
			return mura_error_prefix("%s: row %d: %s", path, row, s->set.metric);
		}
		if (mura_tune_trial_push(s, t, v) < 0) {
			fclose(f);
			return -1;
		}
		u->dirty = 1;
		say(u, MURA_TUNE_EV_EPOCH, i, NULL);
		judge(u, i, row);
	}
	fclose(f);
	return 0;
}

/* The last line of a trial's stderr, for the message of a failure. */
static void
last_line(const struct mura_tune_study *s, int n, char *buf, size_t len)
{
	char path[4300], line[512];
	FILE *f;

	buf[0] = 0;
	trial_path(path, sizeof path, s, n, "stderr");
	if (!(f = fopen(path, "r")))
		return;
	while (fgets(line, sizeof line, f))
		if (line[0] != '\n')
			snprintf(buf, len, "%.*s", (int)strcspn(line, "\n"), line);
	fclose(f);
}

/* Trial i's process ended with status st. */
static int
ended(struct runner *u, int i, int st)
{
	struct mura_tune_study *s = u->s;
	struct mura_tune_trial *t = &s->t[i];
	int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
	int termed = (WIFSIGNALED(st) && (WTERMSIG(st) == SIGTERM || WTERMSIG(st) == SIGINT)) ||
	             (WIFEXITED(st) && (WEXITSTATUS(st) == 143 || WEXITSTATUS(st) == 130));
	char why[600];

	u->running--;
	t->pid = 0;
	if (t->stopping != MURA_TUNE_FAILED && read_log(u, i) < 0) {
		say(u, MURA_TUNE_EV_INFO, i, "%s", mura_error_get());
		t->stopping = MURA_TUNE_FAILED;
	}
	if (t->stopping == MURA_TUNE_FAILED) {
		t->state = MURA_TUNE_FAILED;
		u->failed++;
		say(u, MURA_TUNE_EV_FAILED, i, "its log cannot be read");
	} else if (t->stopping && (ok || termed)) {
		t->state = t->stopping;
		say(u, t->state == MURA_TUNE_PRUNED ? MURA_TUNE_EV_PRUNED : MURA_TUNE_EV_PAUSED, i, NULL);
	} else if (ok && t->epochs > 0) {
		t->state = MURA_TUNE_COMPLETE;
		say(u, MURA_TUNE_EV_COMPLETE, i, NULL);
	} else if (termed && u->r->stop && *u->r->stop) {
		t->state = MURA_TUNE_RUNNING;  /* interrupted with us: resumed next time */
	} else {
		last_line(s, t->number, why, sizeof why);
		t->state = MURA_TUNE_FAILED;
		u->failed++;
		if (ok)
			say(u, MURA_TUNE_EV_FAILED, i, "no epoch in its log");
		else if (WIFSIGNALED(st))
			say(u, MURA_TUNE_EV_FAILED, i, "killed by signal %d%s%s", WTERMSIG(st), *why ? ": " : "", why);
		else
			say(u, MURA_TUNE_EV_FAILED, i, "exit status %d%s%s", WEXITSTATUS(st), *why ? ": " : "", why);
	}
	t->stopping = 0;
	return mura_tune_journal_write(s);
}

static int
reap(struct runner *u)
{
	int st;
	pid_t pid;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
		for (int i = 0; i < u->s->n; i++)
			if (u->s->t[i].pid == pid && u->s->t[i].state == MURA_TUNE_RUNNING) {
				if (ended(u, i, st) < 0)
					return -1;
				break;
			}
	return 0;
}

/* ASHA: a paused trial that may go on now, from the highest rung down;
 * -1 when none. */
static int
promotable(struct runner *u)
{
	struct mura_tune_study *s = u->s;
	int top = 0;

	if (s->set.pruner != MURA_TUNE_ASHA)
		return -1;
	for (int i = 0; i < s->n; i++)
		if (s->t[i].rung > top)
			top = s->t[i].rung;
	for (int k = top - 1; k >= 0; k--)
		for (int i = 0; i < s->n; i++)
			if (s->t[i].state == MURA_TUNE_PAUSED && s->t[i].rung == k + 1 &&
			    mura_tune_asha_promotable(s, &s->t[i], k))
				return i;
	return -1;
}

/* Start what the free slots can take; 0 when nothing was left to start. */
static int
fill(struct runner *u)
{
	struct mura_tune_study *s = u->s;
	int started = 0, i;

	while (u->running < u->r->jobs) {
		if (u->nresume) {
			i = u->resume[0];
			memmove(u->resume, u->resume + 1, (size_t)--u->nresume * sizeof *u->resume);
			if (start(u, i, 1) < 0)
				return -1;
		} else if ((i = promotable(u)) >= 0) {
			if (start(u, i, 1) < 0)
				return -1;
		} else if (s->n < u->r->trials) {
			struct mura_tune_trial *t;
			if (!(t = mura_tune_trial_add(s)))
				return -1;
			mura_tune_sample(s, t->number, t->x);
			if (start(u, t->number, 0) < 0)
				return -1;
		} else
			break;
		started++;
	}
	return started;
}

/* A trial's process left by a killed mura-tune: wait until it is gone
 * (it got SIGTERM and writes its checkpoint).  A pid now used by another
 * program (its command line does not name the trial's folder) is not it. */
static int
wait_orphan(const struct mura_tune_study *s, const struct mura_tune_trial *t)
{
	char path[64], dir[4200], cmd[8192];
	struct timespec ts = {0, 50 * 1000 * 1000};

	if (t->pid <= 0)
		return 0;
	trial_path(dir, sizeof dir, s, t->number, NULL);
	snprintf(path, sizeof path, "/proc/%ld/cmdline", t->pid);
	for (int k = 0; k < 1200; k++) {  /* a minute */
		FILE *f = fopen(path, "rb");
		size_t n;
		int ours = 0;
		if (!f)
			return 0;
		n = fread(cmd, 1, sizeof cmd - 1, f);
		fclose(f);
		cmd[n] = 0;
		for (size_t o = 0; o < n; o += strlen(cmd + o) + 1)
			if (strstr(cmd + o, dir))
				ours = 1;
		if (!ours)
			return 0;
		if (k == 0)
			kill((pid_t)t->pid, SIGTERM);
		nanosleep(&ts, NULL);
	}
	return mura_error("trial %d: its process %ld is still running", t->number, t->pid);
}

/* Stop every running trial (SIGTERM, once) and wait for them. */
static int
stop_all(struct runner *u)
{
	int st;
	pid_t pid;

	for (int i = 0; i < u->s->n; i++)
		if (u->s->t[i].state == MURA_TUNE_RUNNING && u->s->t[i].pid > 0)
			kill((pid_t)u->s->t[i].pid, SIGTERM);
	while (u->running > 0 && (pid = waitpid(-1, &st, 0)) > 0)
		for (int i = 0; i < u->s->n; i++)
			if (u->s->t[i].pid == pid && u->s->t[i].state == MURA_TUNE_RUNNING) {
				if (ended(u, i, st) < 0)
					return -1;
				break;
			}
	return 0;
}

int
mura_tune_study_run(struct mura_tune_study *s, const struct mura_tune_run *r)
{
	struct runner u = {s, r, 0, NULL, 0, 0, 0};
	char path[4200];
	sigset_t chld, old;
	struct timespec poll;
	int lock, rc = -1;

	snprintf(path, sizeof path, "%s/lock", s->dir);
	if ((lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666)) < 0)
		return mura_error("%s: %s", path, strerror(errno));
	if (flock(lock, LOCK_EX | LOCK_NB) < 0) {
		close(lock);
		return mura_error("%s: another mura-tune is running this study", s->dir);
	}
	if (!(u.resume = malloc(((size_t)s->n + 1) * sizeof *u.resume))) {
		close(lock);
		return mura_error("out of memory");
	}
	for (int i = 0; i < s->n; i++)
		if (s->t[i].state == MURA_TUNE_RUNNING) {
			if (wait_orphan(s, &s->t[i]) < 0)
				goto out;
			s->t[i].pid = 0;
			u.resume[u.nresume++] = i;
		}
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);
	poll.tv_sec = (time_t)r->poll;
	poll.tv_nsec = (long)((r->poll - floor(r->poll)) * 1e9);
	for (;;) {
		int n;
		if (r->stop && *r->stop) {
			if (stop_all(&u) < 0)
				goto restore;
			rc = 1;
			break;
		}
		if ((n = fill(&u)) < 0)
			goto restore;
		if (!u.running)
			break;
		sigtimedwait(&chld, NULL, &poll);
		if (reap(&u) < 0)
			goto restore;
		for (int i = 0; i < s->n; i++)
			if (s->t[i].state == MURA_TUNE_RUNNING && s->t[i].pid > 0 && !s->t[i].stopping) {
				if (read_log(&u, i) < 0) {
					say(&u, MURA_TUNE_EV_INFO, i, "%s", mura_error_get());
					stop_trial(&u, i, MURA_TUNE_FAILED);
				}
			}
		if (u.dirty && mura_tune_journal_write(s) < 0)
			goto restore;
		u.dirty = 0;
	}
	if (rc == -1) {
		/* ASHA: trials still paused at the end were not promoted: pruned */
		for (int i = 0; i < s->n; i++)
			if (s->t[i].state == MURA_TUNE_PAUSED)
				s->t[i].state = MURA_TUNE_PRUNED;
		rc = 0;
	}
	if (mura_tune_journal_write(s) < 0)
		rc = -1;
restore:
	if (rc < 0)
		stop_all(&u);
	sigprocmask(SIG_SETMASK, &old, NULL);
out:
	free(u.resume);
	close(lock);
	return rc;
}
