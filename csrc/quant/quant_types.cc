// placeholder being written: traits table
#include "quant/quant_types.h"
namespace llmasos {
const TypeTraits* type_traits(uint32_t) { return nullptr; }
}
