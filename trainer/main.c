/* kubefit-trainer: command-line entry point. */
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: kubefit-trainer <command> [options]\n"
    "\n"
    "commands:\n"
    "  pretrain   train the AWD-LSTM language model from scratch on a corpus\n"
    "  train      fine-tune the language model, then train the classifier\n"
    "  evaluate   compute metrics of a trained model on labelled data\n"
    "  predict    print labels with probabilities for texts read from stdin\n"
    "\n"
    "options (as the old training script had):\n"
    "  --lang L          language folder in the bucket (en, fr, ...)\n"
    "  --epochs N        epochs per stage\n"
    "  --bucket-name B   bucket holding LANG/pretrained and LANG/data\n"
    "  --model-dir D     where the model goes: B/D/LANG/JOB/RUN/\n"
    "  -h, --help        this text\n";

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    fprintf(stderr, "kubefit-trainer: unknown command '%s' (see --help)\n", argv[1]);
    return 2;
}
