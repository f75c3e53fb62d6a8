// placeholder being written
#include "kernels/cpu/matmul.h"
