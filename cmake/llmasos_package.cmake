# The embeddable library: libllmasos (shared) with the C API, built from the same static core as the
# Python module, exported as llmasos::llmasos for find_package(llmasos). Only the C API is exported
# (llmasos.hpp is header-only over it); every core symbol stays hidden.
include(CMakePackageConfigHelpers)
include(GNUInstallDirs)

add_library(llmasos SHARED csrc/capi/c_api.cc)
add_library(llmasos::llmasos ALIAS llmasos)
target_link_libraries(llmasos PRIVATE llmasos_core)
llmasos_portable_link(llmasos)
target_include_directories(llmasos PUBLIC
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/csrc/include>
  $<INSTALL_INTERFACE:${LLMASOS_INSTALL_INCLUDEDIR}>)
target_compile_definitions(llmasos PRIVATE LLMASOS_BUILDING_LIBRARY
                                           LLMASOS_VERSION_STRING="${PROJECT_VERSION}")
set_target_properties(llmasos PROPERTIES
  CXX_VISIBILITY_PRESET hidden
  VISIBILITY_INLINES_HIDDEN ON
  INSTALL_RPATH "$ORIGIN")
if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
  # Export exactly the C API (cmake/llmasos.map); fail on undefined symbols.
  target_link_options(llmasos PRIVATE -Wl,--exclude-libs,ALL -Wl,--no-undefined
                      -Wl,--version-script=${PROJECT_SOURCE_DIR}/cmake/llmasos.map)
  set_property(TARGET llmasos APPEND PROPERTY LINK_DEPENDS ${PROJECT_SOURCE_DIR}/cmake/llmasos.map)
endif()
if(NOT SKBUILD)
  # A wheel cannot hold symlinks, so only plain installs get the versioned soname chain. Before 1.0
  # a minor version may change the C ABI (0.2 and 0.3 grew llmasos_generate_options), so the soname
  # carries major.minor until then.
  if(PROJECT_VERSION_MAJOR EQUAL 0)
    set(_llmasos_soversion ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
  else()
    set(_llmasos_soversion ${PROJECT_VERSION_MAJOR})
  endif()
  set_target_properties(llmasos PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION ${_llmasos_soversion})
endif()

install(TARGETS llmasos EXPORT llmasosTargets
  LIBRARY DESTINATION ${LLMASOS_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${LLMASOS_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${LLMASOS_INSTALL_BINDIR})
install(FILES csrc/include/llmasos/llmasos.h csrc/include/llmasos/llmasos.hpp
              csrc/include/llmasos/errors.hpp
        DESTINATION ${LLMASOS_INSTALL_INCLUDEDIR}/llmasos)
install(EXPORT llmasosTargets NAMESPACE llmasos:: DESTINATION ${LLMASOS_INSTALL_CMAKEDIR})

configure_package_config_file(cmake/llmasosConfig.cmake.in
  ${PROJECT_BINARY_DIR}/llmasosConfig.cmake INSTALL_DESTINATION ${LLMASOS_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/llmasosConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/llmasosConfig.cmake ${PROJECT_BINARY_DIR}/llmasosConfigVersion.cmake
        DESTINATION ${LLMASOS_INSTALL_CMAKEDIR})
# The build tree is a package too: llmasos_DIR=<build dir> works without installing.
export(EXPORT llmasosTargets NAMESPACE llmasos:: FILE ${PROJECT_BINARY_DIR}/llmasosTargets.cmake)
