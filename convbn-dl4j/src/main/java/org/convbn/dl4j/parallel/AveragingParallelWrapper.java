package org.convbn.dl4j.parallel;

import java.util.ArrayList;
import java.util.List;
import net.jcip.annotations.NotThreadSafe;
import net.jcip.annotations.ThreadSafe;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.conf.WorkspaceMode;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.optimize.api.TrainingListener;
import org.deeplearning4j.parallelism.ParallelWrapper;
import org.deeplearning4j.parallelism.factory.TrainerContext;
import org.deeplearning4j.parallelism.trainer.DefaultTrainer;
import org.deeplearning4j.parallelism.trainer.Trainer;
import org.nd4j.linalg.factory.Nd4j;

/**
 * DL4J's {@link ParallelWrapper} in parameter-averaging mode, with one fix: every worker starts a {@code fit} from
 * the parameters and updater state the model had when the fit began.
 *
 * <p>How ParallelWrapper averages: each round hands one minibatch to each of {@code workers} threads; worker 0
 * trains the model itself, worker i > 0 a replica; every {@code averagingFrequency} rounds the parameters (and the
 * updater state) of all workers are replaced by their mean. With averaging every round, a linear updater (SGD,
 * Nesterov momentum) and an L2 or weight decay, two workers on two minibatches of n examples take exactly the
 * step one model takes on the 2n examples together: the mean loss's gradient is the mean of the halves'. That holds
 * for every mode of a ConvBN layer whose BN statistics are fixed (EVAL, TUNE, DEPLOY). In TRAIN each worker
 * normalises with its own minibatch's statistics and the running statistics are averaged, so TRAIN is data-parallel
 * BatchNorm over n examples per worker, not over 2n (as in PyTorch's DistributedDataParallel without SyncBatchNorm).
 * Adam and other non-linear updaters average their moments, which is not the combined-batch step either.
 *
 * <p>The fix: DL4J 1.0.0-M2.1's trainers build worker i's replica inside the worker's thread, copying the
 * <em>live</em> parameters of the model, while worker 0 is already training it on the first minibatch (its source
 * calls this a race condition in a FIXME): depending on timing a replica starts from the parameters before, during
 * or after worker 0's first step. Measured in the setting of this module's ParallelWrapperTest (a small converted
 * residual graph, float64, two workers, three rounds): with DL4J's own wrapper the parameters ended 0.035 off the
 * combined-batch step in EVAL and DEPLOY and matched it in TUNE in the same run; with this class all three hold to
 * 1e-12. Here the replicas copy a snapshot taken when the fit begins (one copy of the model per {@code fit}).
 *
 * <p>Workspaces: the wrapper runs every worker with {@link WorkspaceMode#ENABLED} unless told otherwise; ConvBN
 * layers allocate their activations (and what a mode keeps for the backward) in DL4J's activations workspace, so
 * DL4J's own workspace validation passes in every worker.
 *
 * <p>Thread safety: {@code fit} is synchronized (as ParallelWrapper's); the model must not be used by other threads
 * while a fit runs. The workers' threads use the model and its replicas one at a time each.
 */
@ThreadSafe
public final class AveragingParallelWrapper extends ParallelWrapper {

    private AveragingParallelWrapper(Builder b) {
        super(b.model, b.workers, b.prefetch);
        this.averagingFrequency = b.averagingFrequency;
        this.averageUpdaters = true;
        this.reportScore = false;
        this.isMQ = Nd4j.getAffinityManager().getNumberOfDevices() > 1;
        this.workspaceMode = b.workspaceMode;
        this.trainerContext = new SnapshotTrainerContext();
        this.gradientsAccumulator = null;
        init();
        // As ParallelWrapper's builder does: the model's listeners become the wrapper's (each worker gets them).
        List<TrainingListener> listeners = new ArrayList<>(
                b.model instanceof ComputationGraph g
                        ? g.getListeners()
                        : ((MultiLayerNetwork) b.model).getListeners());
        b.model.setListeners(new ArrayList<>());
        if (!listeners.isEmpty()) {
            setListeners(listeners);
        }
    }

    /** Stops the worker threads; the model keeps its parameters. */
    @Override
    public void close() {
        try {
            super.close();
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException("closing the workers failed: " + e.getMessage(), e);
        }
    }

    /**
     * @param model the network to train: an initialised {@link ComputationGraph} or {@link MultiLayerNetwork};
     *              modified by every fit (it is worker 0's model)
     * @return a builder with 2 workers, averaging every round, a prefetch of 2 minibatches and workspaces on
     */
    public static Builder builder(Model model) {
        return new Builder(model);
    }

    /** Settings of an {@link AveragingParallelWrapper}, checked in {@link #build()}. */
    @NotThreadSafe
    public static final class Builder {
        private final Model model;
        private int workers = 2;
        private int averagingFrequency = 1;
        private int prefetch = 2;
        private WorkspaceMode workspaceMode = WorkspaceMode.ENABLED;

        private Builder(Model model) {
            this.model = model;
        }

        /** @param workers the number of worker threads, at least 2 (each trains one minibatch per round) */
        public Builder workers(int workers) {
            this.workers = workers;
            return this;
        }

        /** @param rounds the number of rounds between averages, at least 1 (1: the combined-batch step) */
        public Builder averagingFrequency(int rounds) {
            this.averagingFrequency = rounds;
            return this;
        }

        /** @param minibatches how many minibatches a background thread reads ahead, 0 for none */
        public Builder prefetch(int minibatches) {
            this.prefetch = minibatches;
            return this;
        }

        /** @param mode the workers' training workspace mode */
        public Builder workspaceMode(WorkspaceMode mode) {
            this.workspaceMode = mode;
            return this;
        }

        /**
         * @return the wrapper
         * @throws IllegalArgumentException naming the setting out of range, or for a model that is neither an
         *                                  initialised ComputationGraph nor an initialised MultiLayerNetwork
         */
        public AveragingParallelWrapper build() {
            if (model instanceof ComputationGraph g) {
                requireInitialised(g.getVertices() != null, "ComputationGraph");
            } else if (model instanceof MultiLayerNetwork n) {
                requireInitialised(n.isInitCalled(), "MultiLayerNetwork");
            } else {
                throw new IllegalArgumentException("model: expected a ComputationGraph or a MultiLayerNetwork, got "
                        + (model == null ? "null" : model.getClass().getName()));
            }
            if (workers < 2) {
                throw new IllegalArgumentException("workers: expected at least 2, got " + workers);
            }
            if (averagingFrequency < 1) {
                throw new IllegalArgumentException(
                        "averagingFrequency: expected at least 1, got " + averagingFrequency);
            }
            if (prefetch < 0) {
                throw new IllegalArgumentException("prefetch: expected at least 0, got " + prefetch);
            }
            if (workspaceMode == null) {
                throw new IllegalArgumentException("workspaceMode: expected ENABLED or NONE, got null");
            }
            return new AveragingParallelWrapper(this);
        }

        private static void requireInitialised(boolean initialised, String kind) {
            if (!initialised) {
                throw new IllegalArgumentException(
                        "model: expected an initialised " + kind + " (call init()), got " + "one without parameters");
            }
        }
    }

    /**
     * DL4J's default trainers, except that the replicas (workers 1..n-1) copy a snapshot of the model taken when
     * the fit begins ({@link #init}, called once per fit before any worker starts) instead of the live model.
     */
    private static final class SnapshotTrainerContext implements TrainerContext {
        private Model snapshot;

        @Override
        public void init(Model model, Object... args) {
            snapshot = model instanceof ComputationGraph g ? g.clone() : ((MultiLayerNetwork) model).clone();
        }

        @Override
        public Trainer create(
                String uuid,
                int threadId,
                Model model,
                int rootDevice,
                boolean useMDS,
                ParallelWrapper wrapper,
                WorkspaceMode mode,
                int averagingFrequency) {
            // Worker 0 trains the model itself; the others build their replicas from the snapshot.
            Model source = threadId == 0 ? model : snapshot;
            DefaultTrainer trainer = DefaultTrainer.builder()
                    .originalModel(source)
                    .replicatedModel(source)
                    .threadId(threadId)
                    .parallelWrapper(wrapper)
                    .workspaceMode(mode)
                    .useMDS(useMDS)
                    .uuid(uuid + "_thread_" + threadId)
                    .averagingFrequency(averagingFrequency)
                    .build();
            trainer.setName("AveragingParallelWrapper trainer " + threadId);
            trainer.setDaemon(true);
            return trainer;
        }

        @Override
        public void finalizeRound(Model originalModel, Model... models) {
            // The wrapper averages after each round itself.
        }

        @Override
        public void finalizeTraining(Model originalModel, Model... models) {
            finalizeRound(originalModel, models);
        }
    }
}
