// The door to the training screens: their code is fetched on the first visit (components/LazyScreen).
import { lazyScreen } from "../../components/LazyScreen";

export const TrainingScreen = lazyScreen(() => import("./TrainingRoutes"), "Training", "the training pages");
