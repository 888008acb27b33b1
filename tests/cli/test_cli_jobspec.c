/* jobspec: submit's flags -> TrainingJob, checked as the API server and the controller would,
 * with messages naming the flag. */
#include <jansson.h>
#include <string.h>

#include "args.h"
#include "err.h"
#include "jobspec.h"
#include "test.h"

/* Builds the job for a space-separated command line ('~': a space inside an argument); JSON text or "ERR: msg". */
static const char *build(const char *line)
{
    static char out[4096];
    char buf[1024], *argv[64];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", line);
    for (char *t = buf; *t && argc < 63;) {
        argv[argc++] = t;
        t += strcspn(t, " ");
        if (*t)
            *t++ = '\0';
    }
    for (int i = 0; i < argc; i++) /* '~' stands for a space inside one argument */
        for (char *p = argv[i]; *p; p++)
            *p = *p == '~' ? ' ' : *p;
    const args_flag *tables[] = {jobspec_flags(), NULL};
    args_parsed a;
    json_t *job = NULL;
    argv[argc] = NULL;
    if (args_parse(&a, tables, "kubefit submit", argv) < 0 || jobspec_build(&job, &a, "j", "ns") < 0) {
        snprintf(out, sizeof out, "ERR: %s", err_msg());
        args_dispose(&a);
        return out;
    }
    char *s = json_dumps(json_object_get(job, "spec"), JSON_COMPACT | JSON_REAL_PRECISION(15));
    snprintf(out, sizeof out, "%s", s ? s : "?");
    free(s);
    json_decref(job);
    args_dispose(&a);
    return out;
}

int main(void)
{
    /* the old workflow's flags, then the Pod's, then trainer arguments */
    CHECK_EQ_STR("{\"language\":\"fr\",\"storage\":{\"bucket\":\"gs://my-models\",\"modelDir\":\"models\"},\"epochs\":10}",
                 build("--lang fr --epochs 10 --bucket-name gs://my-models --model-dir models"));
    CHECK_EQ_STR("{\"language\":\"en\",\"storage\":{\"bucket\":\"gs://abc\",\"trainURI\":\"gs://abc/x.csv\"},"
                 "\"stages\":[\"pretrain\",\"finetune-lm\",\"classifier\"],\"labels\":{\"mode\":\"multi\","
                 "\"threshold\":0.4},\"batchSize\":32,\"learningRate\":0.01,\"model\":{\"embSize\":64},"
                 "\"resources\":{\"gpus\":1,\"acceleratorType\":\"nvidia-l4\",\"spot\":true,\"cpu\":8,\"memory\":"
                 "\"32Gi\"},\"image\":\"img:1\",\"serviceAccountName\":\"kubefit-trainer\",\"backoffLimit\":5,"
                 "\"activeDeadlineSeconds\":5400,\"schedule\":\"@daily\",\"env\":[{\"name\":\"A\",\"value\":\"x=y\"}],"
                 "\"args\":[\"--max-vocab\",\"30000\"]}",
                 build("--lang en --bucket-name gs://abc --train-uri gs://abc/x.csv --stages pretrain,finetune-lm,classifier "
                       "--label-mode multi --threshold 0.4 --batch-size 32 --lr 1e-2 --emb-size 64 --gpus 1 "
                       "--accelerator nvidia-l4 --spot --cpu 8 --memory 32Gi --image img:1 --service-account "
                       "kubefit-trainer --backoff-limit 5 --deadline 1h30m --schedule @daily --env A=x=y -- --max-vocab "
                       "30000"));
    /* refusals name the flag, with the trainer's (contract) or the controller's words */
    CHECK_EQ_STR("ERR: --lang is required (the language folder in the bucket: en, fr, pt-BR, ...)",
                 build("--bucket-name gs://abc"));
    CHECK_EQ_STR("ERR: --bucket-name is required (gs://BUCKET, where LANG/data/train.csv is)", build("--lang fr"));
    CHECK_EQ_STR("ERR: --batch-size: expected an integer in [2, 4096], got \"1\"",
                 build("--lang fr --bucket-name gs://abc --batch-size 1"));
    CHECK_EQ_STR("ERR: --lang: language \"FR\" must be a 2-3 letter lowercase code with an optional uppercase region "
                 "(en, fr, pt-BR)",
                 build("--lang FR --bucket-name gs://abc"));
    CHECK_EQ_STR("ERR: --bucket-name: bucket name \"google-x\" may not start with \"goog\" or contain \"google\"",
                 build("--lang fr --bucket-name gs://google-x"));
    CHECK(strncmp(build("--lang fr --bucket-name gs://abc --stages train"),
                  "ERR: --stages: unknown value 'train' in \"train\" (expected ", 57) == 0);
    CHECK_EQ_STR("ERR: --gpus: 2 GPUs requested; the trainer uses one GPU (0 or 1)",
                 build("--lang fr --bucket-name gs://abc --gpus 2"));
    CHECK_EQ_STR("ERR: --gpus: expected an integer, got \"one\"", build("--lang fr --bucket-name gs://abc --gpus one"));
    CHECK_EQ_STR("ERR: --backoff-limit: must be at most 100, got 101",
                 build("--lang fr --bucket-name gs://abc --backoff-limit 101"));
    CHECK_EQ_STR("ERR: --schedule: \"0 0 31 2 *\" never fires (no such date within five years)",
                 build("--lang fr --bucket-name gs://abc --schedule 0~0~31~2~*"));
    CHECK_EQ_STR("ERR: --env: expected NAME=VALUE, got \"A\"", build("--lang fr --bucket-name gs://abc --env A"));
    CHECK_EQ_STR("ERR: --deadline: expected a duration such as 90s, 5m or 1h30m, got \"soon\"",
                 build("--lang fr --bucket-name gs://abc --deadline soon"));
    CHECK_EQ_STR("ERR: after --: --lr is a kubefit submit flag (it sets spec.learningRate): give it before --",
                 build("--lang fr --bucket-name gs://abc -- --lr 3"));
    CHECK_EQ_STR("ERR: after --: spec.args: unknown option '--bogus' (see --help)",
                 build("--lang fr --bucket-name gs://abc -- --bogus"));
    return test_done();
}
