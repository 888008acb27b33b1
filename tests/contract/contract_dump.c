/* contract_dump: the contract's flag table and key lists as JSON, for check_contract.py (which
 * compares them with the CRD and docs/contract.md). */
#include <jansson.h>
#include <stdio.h>

#include "contract.h"

static const char *kind_name(contract_kind k)
{
    static const char *const names[] = {"int", "number", "choice", "list", "text", "switch"};
    return names[k];
}

int main(void)
{
    json_t *flags = json_array(), *metrics = json_array(), *progress = json_array();
    for (const contract_flag *f = contract_flags; f->name; f++) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "name", f->name, "kind", kind_name(f->kind), "owner",
                              f->owner == CONTRACT_BY_CONTROLLER ? "controller" : "user", "default", f->dflt, "help",
                              f->help);
        if (f->kind == CONTRACT_INT || f->kind == CONTRACT_NUMBER)
            json_object_set_new(o, "range", json_pack("{s:f,s:f,s:b,s:b}", "min", f->min, "max", f->max, "minOpen",
                                                      f->min_open, "maxOpen", f->max_open));
        if (f->choices)
            json_object_set_new(o, "choices", json_string(f->choices));
        if (f->field)
            json_object_set_new(o, "field", json_string(f->field));
        json_array_append_new(flags, o);
    }
    for (const char *const *k = contract_metric_keys; *k; k++)
        json_array_append_new(metrics, json_string(*k));
    for (const char *const *k = contract_progress_keys; *k; k++)
        json_array_append_new(progress, json_string(*k));
    json_t *all = json_pack("{s:o,s:o,s:o,s:{s:i,s:i,s:i},s:i,s:s}", "flags", flags, "metricKeys", metrics,
                            "progressKeys", progress, "exitCodes", "ok", CONTRACT_EXIT_OK, "badInput",
                            CONTRACT_EXIT_BAD_INPUT, "transient", CONTRACT_EXIT_TRANSIENT, "resultMax",
                            CONTRACT_RESULT_MAX, "terminationLog", CONTRACT_TERMINATION_LOG);
    json_dumpf(all, stdout, JSON_INDENT(1));
    putchar('\n');
    json_decref(all);
    return 0;
}
