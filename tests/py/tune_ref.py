"""tune_ref.py - the peers of tests/t-tune.sh.

  tune_ref.py tpe SEEDS TRIALS     Optuna's TPESampler (its defaults, seed s) on the
                                   objective of tests/tune-trainer.sh at its last epoch;
                                   the best value of each seed's study, one a line
  tune_ref.py median CURVES        Optuna's MedianPruner (its defaults) over the curves
                                   (one trial a line, one value an epoch, steps from 1),
                                   trials one after the other: "N STATE EPOCHS" a line
  tune_ref.py asha ETA MIN EPOCHS CURVES
                                   ASHA (Li et al. 2020, algorithm 2) with one worker,
                                   written from the paper: "N STATE EPOCHS" a line
  tune_ref.py mwu FILE_A FILE_B    Mann-Whitney U of two samples (normal approximation,
                                   ties corrected): "U p_less p_two" (p_less: A below B)
"""
import math
import sys


def objective_value(lr, dropout, batch):
    return 1 + (math.log10(lr) + 3) ** 2 / 4 + 2 * (dropout - 0.2) ** 2 + {8: 0.05, 16: 0.0, 32: 0.1}[batch]


def tpe(seeds, trials):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(t):
        lr = t.suggest_float("lr", 1e-5, 1e-1, log=True)
        dropout = t.suggest_float("dropout", 0, 0.5)
        batch = t.suggest_categorical("batch", [8, 16, 32])
        return objective_value(lr, dropout, batch)

    for s in range(1, seeds + 1):
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=s))
        study.optimize(objective, n_trials=trials)
        print("%.10g" % study.best_value)


def read_curves(path):
    return [[float(v) for v in line.split()] for line in open(path) if line.strip()]


def median(path):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(pruner=optuna.pruners.MedianPruner())
    for n, curve in enumerate(read_curves(path)):
        t = study.ask()
        for step, v in enumerate(curve, 1):
            t.report(v, step)
            if t.should_prune():
                study.tell(t, state=optuna.trial.TrialState.PRUNED)
                print(n, "pruned", step)
                break
        else:
            study.tell(t, curve[-1])
            print(n, "complete", len(curve))


def asha(eta, min_epochs, epochs, path):
    """One worker: it trains a job to its next rung, then asks get_job()."""
    curves = read_curves(path)
    rungs = []
    e = min_epochs
    while e < epochs:
        rungs.append(e)
        e *= eta
    recorded = [[] for _ in rungs]       # trial numbers recorded at rung k
    promoted = [set() for _ in rungs]
    reached = {}                         # trial -> epochs trained

    def promotable(k):
        ranked = sorted(recorded[k], key=lambda n: (curves[n][rungs[k] - 1], n))
        for n in ranked[:len(ranked) // eta]:
            if n not in promoted[k]:
                return n
        return None

    def train(n, k):
        """Train n from where it is to rung k (or to the end), recording it."""
        while True:
            target = rungs[k] if k < len(rungs) else epochs
            reached[n] = target
            if k == len(rungs):
                return
            recorded[k].append(n)
            # the trial just recorded goes on at once when it is promotable itself
            if n in [m for m in sorted(recorded[k], key=lambda m: (curves[m][rungs[k] - 1], m))
                     [:len(recorded[k]) // eta]]:
                promoted[k].add(n)
                k += 1
                continue
            return

    started = 0
    while True:
        job = None
        for k in reversed(range(len(rungs))):
            n = promotable(k)
            if n is not None:
                promoted[k].add(n)
                job = (n, k + 1)
                break
        if job is None:
            if started == len(curves):
                break
            job = (started, 0)
            started += 1
        train(*job)
    for n in range(len(curves)):
        print(n, "complete" if reached[n] == epochs else "pruned", reached[n])


def mwu(a_path, b_path):
    a = [float(x) for x in open(a_path).read().split()]
    b = [float(x) for x in open(b_path).read().split()]
    both = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks, i, ties = {}, 0, 0.0
    rank_a = 0.0
    while i < len(both):
        j = i
        while j + 1 < len(both) and both[j + 1][0] == both[i][0]:
            j += 1
        r = (i + j) / 2 + 1
        t = j - i + 1
        ties += t ** 3 - t
        for k in range(i, j + 1):
            if both[k][1] == 0:
                rank_a += r
        i = j + 1
    n1, n2 = len(a), len(b)
    u = rank_a - n1 * (n1 + 1) / 2
    n = n1 + n2
    sd = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    z = (u - n1 * n2 / 2) / sd
    p_less = 0.5 * math.erfc(-z / math.sqrt(2))
    p_two = min(1.0, 2 * min(p_less, 1 - p_less))
    print("%g %.4g %.4g" % (u, p_less, p_two))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "tpe":
        tpe(int(sys.argv[2]), int(sys.argv[3]))
    elif cmd == "median":
        median(sys.argv[2])
    elif cmd == "asha":
        asha(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif cmd == "mwu":
        mwu(sys.argv[2], sys.argv[3])
    else:
        sys.exit("tune_ref.py: unknown command " + cmd)
