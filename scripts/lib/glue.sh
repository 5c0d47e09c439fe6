# Shared by the GLUE scripts (sourced): glue_folder TASK prints the task's folder under
# $OCTET_DATA/glue, or says the task is unknown and exits 2.
glue_folder() {
  case "$1" in
    sst2) echo SST-2 ;; mrpc) echo MRPC ;; cola) echo CoLA ;; stsb) echo STS-B ;; rte) echo RTE ;;
    *) echo "$(basename "$0"): unknown task '$1' (expected sst2, mrpc, cola, stsb, rte)" >&2; exit 2 ;;
  esac
}
