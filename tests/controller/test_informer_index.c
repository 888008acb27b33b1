/* informer: the label index stays equal to a scan of the cache while one writer applies watch
 * events (Pods created, relabelled to another job, deleted) and readers list through the index
 * at the same time. Run under ASan/UBSan with the unit label; each listed object must carry the
 * asked-for label, and at the end every job's indexed list equals the writer's own model. */
#include <pthread.h>
#include <stdio.h>

#include "informer.h"
#include "test.h"

#define JOBS 16
#define PODS 400
#define STEPS 8000

static informer *inf;
static volatile int done;
static int reader_bad, reader_lists;

static json_t *pod(int i, int job, int version, int with_managed)
{
    char name[32], label[32], rv[32];
    snprintf(name, sizeof name, "p%d", i);
    snprintf(label, sizeof label, "job%d", job);
    snprintf(rv, sizeof rv, "%d", version);
    json_t *p = json_pack("{s:{s:s,s:s,s:s,s:{s:s,s:s}},s:{s:s},s:{s:s}}", "metadata", "name", name, "namespace",
                          "ns", "resourceVersion", rv, "labels", "kubefit.dev/job", label, "app", "x", "spec",
                          "nodeName", "n1", "status", "phase", "Pending");
    if (with_managed)
        json_object_set_new(json_object_get(p, "metadata"), "managedFields", json_pack("[{s:s}]", "manager", "kubectl"));
    return p;
}

static void *reader(void *u)
{
    (void)u;
    char job[32];
    for (int k = 0; !done; k++) {
        snprintf(job, sizeof job, "job%d", k % JOBS);
        json_t *list = informer_list(inf, "ns", "kubefit.dev/job", job);
        size_t i;
        json_t *o;
        json_array_foreach(list, i, o) {
            const char *v = json_string_value(json_object_get(json_object_get(json_object_get(o, "metadata"), "labels"),
                                                              "kubefit.dev/job"));
            if (!v || strcmp(v, job) != 0)
                __atomic_add_fetch(&reader_bad, 1, __ATOMIC_RELAXED);
            if (json_object_get(json_object_get(o, "metadata"), "managedFields"))
                __atomic_add_fetch(&reader_bad, 1, __ATOMIC_RELAXED);
        }
        json_decref(list);
        __atomic_add_fetch(&reader_lists, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

int main(void)
{
    inf = informer_new(&(informer_options){.name = "pods", .collection = "/api/v1/pods",
                                           .index_label = "kubefit.dev/job"});
    CHECK(inf != NULL);
    int job_of[PODS];
    for (int i = 0; i < PODS; i++)
        job_of[i] = -1;
    pthread_t readers[3];
    for (int r = 0; r < 3; r++)
        pthread_create(&readers[r], NULL, reader, NULL);
    unsigned seed = 12345;
    for (int s = 0; s < STEPS; s++) {
        seed = seed * 1103515245u + 12345u;
        int i = (int)((seed >> 8) % PODS), job = (int)((seed >> 20) % JOBS);
        json_t *p;
        if (job_of[i] < 0) {
            p = pod(i, job, s, s & 1);
            informer_apply(inf, "ADDED", p);
            job_of[i] = job;
        } else if ((seed >> 4) % 5 == 0) {
            p = pod(i, job_of[i], s, 0);
            informer_apply(inf, "DELETED", p);
            job_of[i] = -1;
        } else {
            p = pod(i, job, s, s & 1); /* relabelled: moves to another job's bucket */
            informer_apply(inf, "MODIFIED", p);
            job_of[i] = job;
        }
        json_decref(p);
    }
    done = 1;
    for (int r = 0; r < 3; r++)
        pthread_join(readers[r], NULL);
    CHECK_EQ_INT(0, reader_bad);
    CHECK(reader_lists > 0);
    /* At rest: each job's indexed list is exactly the model's, and equals a full scan. */
    char job[32];
    for (int j = 0; j < JOBS; j++) {
        snprintf(job, sizeof job, "job%d", j);
        int want = 0;
        for (int i = 0; i < PODS; i++)
            want += job_of[i] == j;
        json_t *indexed = informer_list(inf, "ns", "kubefit.dev/job", job);
        CHECK_EQ_INT(want, json_array_size(indexed));
        json_decref(indexed);
    }
    int live = 0;
    for (int i = 0; i < PODS; i++)
        live += job_of[i] >= 0;
    json_t *all = informer_list(inf, NULL, NULL, NULL);
    CHECK_EQ_INT(live, json_array_size(all));
    json_decref(all);
    json_t *other = informer_list(inf, "other-ns", "kubefit.dev/job", "job1");
    CHECK_EQ_INT(0, json_array_size(other));
    json_decref(other);
    informer_free(inf);
    fprintf(stderr, "readers listed %d times\n", reader_lists);
    return test_done();
}
