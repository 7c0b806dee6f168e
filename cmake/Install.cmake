# `cmake --install` rules and the `podworker` CMake package, so a separate project builds its own
# worker with find_package(podworker) and links podworker::worker (see examples/custom-handler).
#
# Included at the end of the top-level CMakeLists.txt, after every folder has defined its targets:
# install(TARGETS) may name targets of other folders from here (CMake >= 3.13). The set of exported
# libraries is computed by walking the link interface of the roots below, so a folder that starts
# linking a new internal library does not break the export.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

if(NOT PODWORKER_SERVER)
  # Without the server parts there is no worker to build against; nothing is installed.
  message(STATUS "podworker: install rules need PODWORKER_SERVER=ON; none defined")
  return()
endif()

set(PODWORKER_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/podworker")

# Libraries an out-of-tree worker links, in two install components:
#   core  the runtime, the handler API, the built-in handlers (echo, stream_echo, sleep: a custom
#         worker may register them too), the executables; needs no CUDA toolkit to use
#   cuda  the kernels (podworker::kernels_cuda: RAII CUDA handles, device detection, launchers; in a
#         build without CUDA they exist and throw NotCompiled; podworker::kernels, the CPU
#         references): find_package(podworker COMPONENTS cuda); and, in a CUDA build, the CUDA
#         backend module lib/podworker/libpodworker_cuda.so, which an installed worker opens (from
#         ../lib/podworker beside its bin/) when textgen asks for CUDA
# so a CPU-only consumer configures on a machine without the toolkit, even against a CUDA build.
set(_podworker_export_roots
  podworker_worker podworker_handler_api podworker_common podworker_handlers_basic)
set(_podworker_cuda_roots podworker_kernels_cuda)

# Walks INTERFACE_LINK_LIBRARIES from `roots`: our own (non-imported) targets land in `out_targets`,
# imported ones (Threads::Threads, CURL::libcurl, CUDA::cudart, Boost::headers ...) in `out_imported`.
function(_podworker_link_closure out_targets out_imported)
  set(seen "")
  set(imported_seen "")
  set(queue ${ARGN})
  while(queue)
    list(POP_FRONT queue item)
    # A link item added from another directory is recorded between ::@(id) markers; skip those.
    if(item MATCHES "^::@")
      continue()
    endif()
    # Private dependencies of static libraries appear as $<LINK_ONLY:dep>.
    string(REGEX REPLACE "^\\$<LINK_ONLY:(.+)>$" "\\1" item "${item}")
    if(item MATCHES "^\\$<" OR NOT TARGET "${item}")
      continue()  # plain library names, flags, other generator expressions
    endif()
    get_target_property(aliased "${item}" ALIASED_TARGET)
    if(aliased)
      set(item "${aliased}")
    endif()
    get_target_property(is_imported "${item}" IMPORTED)
    if(is_imported)
      list(APPEND imported_seen "${item}")
      continue()
    endif()
    if(item IN_LIST seen)
      continue()
    endif()
    list(APPEND seen "${item}")
    get_target_property(deps "${item}" INTERFACE_LINK_LIBRARIES)
    if(deps)
      list(APPEND queue ${deps})
    endif()
  endwhile()
  list(REMOVE_DUPLICATES imported_seen)
  set(${out_targets} "${seen}" PARENT_SCOPE)
  set(${out_imported} "${imported_seen}" PARENT_SCOPE)
endfunction()

foreach(roots IN ITEMS _podworker_export_roots _podworker_cuda_roots)
  set(_present "")
  foreach(root IN LISTS ${roots})
    if(TARGET ${root})
      list(APPEND _present ${root})
    else()
      message(WARNING "podworker: ${root} is not defined; it is left out of the installed package")
    endif()
  endforeach()
  set(${roots} ${_present})
endforeach()
_podworker_link_closure(_podworker_exported _podworker_imported ${_podworker_export_roots})
_podworker_link_closure(_podworker_cuda_all _podworker_cuda_imported_all ${_podworker_cuda_roots})
# The cuda component holds what only the kernels need; what the core already exports stays there.
# (REMOVE_ITEM needs at least one item to remove, hence the guards.)
set(_podworker_cuda_exported ${_podworker_cuda_all})
set(_podworker_cuda_imported ${_podworker_cuda_imported_all})
if(_podworker_exported)
  list(REMOVE_ITEM _podworker_cuda_exported ${_podworker_exported})
endif()
if(_podworker_imported)
  list(REMOVE_ITEM _podworker_cuda_imported ${_podworker_imported})
endif()
foreach(target IN LISTS _podworker_cuda_roots)
  if(target IN_LIST _podworker_exported)
    message(WARNING "podworker: the core libraries link ${target}: the cuda component is not optional")
  endif()
endforeach()

foreach(target IN LISTS _podworker_exported _podworker_cuda_exported)
  # podworker_foo is exported as podworker::foo unless its folder chose a name.
  get_target_property(export_name ${target} EXPORT_NAME)
  if(NOT export_name)
    string(REGEX REPLACE "^podworker_" "" export_name "${target}")
    set_target_properties(${target} PROPERTIES EXPORT_NAME ${export_name})
  endif()
  # Include directories inside the source or build tree are meaningless once installed; a folder
  # that added one without $<BUILD_INTERFACE:...> would make install(EXPORT) fail. Wrap them: the
  # in-tree build sees exactly the same directories.
  get_target_property(dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
  if(dirs)
    set(wrapped "")
    foreach(dir IN LISTS dirs)
      string(FIND "${dir}" "${PROJECT_SOURCE_DIR}/" in_source)
      string(FIND "${dir}" "${PROJECT_BINARY_DIR}/" in_build)
      if(NOT dir MATCHES "^\\$<" AND (in_source EQUAL 0 OR in_build EQUAL 0 OR dir STREQUAL PROJECT_SOURCE_DIR))
        set(dir "$<BUILD_INTERFACE:${dir}>")
      endif()
      list(APPEND wrapped "${dir}")
    endforeach()
    set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${wrapped}")
  endif()
endforeach()
message(STATUS "podworker: installed package exports ${_podworker_exported}; component cuda: ${_podworker_cuda_exported}")

install(TARGETS ${_podworker_exported}
  EXPORT podworkerTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT core
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT core
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT core
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(_podworker_cuda_exported)
  install(TARGETS ${_podworker_cuda_exported}
    EXPORT podworkerCudaTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT cuda
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT cuda
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT cuda
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endif()

# The CUDA backend module, where llm/cuda_loader.cpp looks relative to an installed executable. The
# directory exists in every install (empty without CUDA), so an image can copy it whatever it built.
install(CODE "file(MAKE_DIRECTORY \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/podworker\")"
  COMPONENT core)
if(TARGET podworker_cuda)
  install(TARGETS podworker_cuda LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/podworker COMPONENT cuda)
endif()

# The executables: what the container image runs.
foreach(exe worker endpoint)
  if(TARGET ${exe})
    install(TARGETS ${exe} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT core)
  endif()
endforeach()

# podworker_install_deps builds exactly what the rules above install, from the same lists, so a
# build that only installs (the image's build stage, scripts/docker-build-steps.sh) need not build
# everything (`all` holds the tools and, when on, the tests) and cannot miss a newly installed target.
set(_podworker_installed ${_podworker_exported} ${_podworker_cuda_exported})
foreach(target podworker_cuda worker endpoint)
  if(TARGET ${target})
    list(APPEND _podworker_installed ${target})
  endif()
endforeach()
add_custom_target(podworker_install_deps)
add_dependencies(podworker_install_deps ${_podworker_installed})

# Public headers, found from each exported target's build-tree include directories: an include/
# folder is installed whole. One that holds podworker/*.h goes to include/; any other (the kernels'
# include/kernels/*.h) goes under include/podworker/, so an installed tree never adds top-level
# folders next to other libraries' headers (such a target names include/podworker as its
# INSTALL_INTERFACE directory).
set(_podworker_header_dirs "")
foreach(target IN LISTS _podworker_exported _podworker_cuda_exported)
  if(target IN_LIST _podworker_exported)
    set(component core)
  else()
    set(component cuda)
  endif()
  get_target_property(dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
  foreach(dir IN LISTS dirs)
    if(NOT dir MATCHES "^\\$<BUILD_INTERFACE:(.+)>$")
      continue()
    endif()
    set(dir "${CMAKE_MATCH_1}")
    string(FIND "${dir}" "${PROJECT_SOURCE_DIR}/" in_source)
    if(in_source EQUAL 0 AND dir MATCHES "/include$" AND NOT dir IN_LIST _podworker_header_dirs)
      list(APPEND _podworker_header_dirs "${dir}")
      set(destination ${CMAKE_INSTALL_INCLUDEDIR})
      if(NOT IS_DIRECTORY "${dir}/podworker")
        set(destination ${CMAKE_INSTALL_INCLUDEDIR}/podworker)
      endif()
      install(DIRECTORY "${dir}/" DESTINATION ${destination} COMPONENT ${component}
        FILES_MATCHING PATTERN "*.h")
    endif()
  endforeach()
endforeach()

# find_dependency() lines for the imported targets the exported ones link, so a consumer never has
# to know them.
# The packages that provide `imported` targets, in `out_packages` ("CURL", "Boost 1.74"), and
# pkg_check_modules() lines in `out_pkg_config`.
function(_podworker_packages_of out_packages out_pkg_config)
  set(packages "")
  set(pkg_config "")
  foreach(imported IN LISTS ARGN)
    if(imported MATCHES "^Threads::")
      list(APPEND packages "Threads")
    elseif(imported MATCHES "^CURL::")
      list(APPEND packages "CURL")
    elseif(imported MATCHES "^Boost::")
      list(APPEND packages "Boost 1.74")
    elseif(imported MATCHES "^CUDA::")
      list(APPEND packages "CUDAToolkit")
    elseif(imported MATCHES "^PkgConfig::(.+)$")
      # Found by pkg-config (hiredis): the consumer looks the module up the same way.
      string(TOLOWER "${CMAKE_MATCH_1}" module)
      string(APPEND pkg_config "pkg_check_modules(${CMAKE_MATCH_1} REQUIRED IMPORTED_TARGET ${module})\n")
      list(APPEND packages "PkgConfig")
    else()
      message(WARNING "podworker: exported targets link ${imported}; the package config does not find it")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES packages)
  set(${out_packages} "${packages}" PARENT_SCOPE)
  set(${out_pkg_config} "${pkg_config}" PARENT_SCOPE)
endfunction()

set(PODWORKER_CONFIG_DEPENDENCIES "")
_podworker_packages_of(_podworker_packages _podworker_pkg_config ${_podworker_imported})
foreach(package IN LISTS _podworker_packages)
  string(APPEND PODWORKER_CONFIG_DEPENDENCIES "find_dependency(${package})\n")
endforeach()
string(APPEND PODWORKER_CONFIG_DEPENDENCIES "${_podworker_pkg_config}")
# The cuda component's own dependencies (the CUDA toolkit in a CUDA build) are looked up only when
# it is asked for, and quietly: a missing one makes that component not found, not the package.
set(PODWORKER_CONFIG_CUDA_DEPENDENCIES "")
_podworker_packages_of(_podworker_cuda_packages _podworker_cuda_pkg_config ${_podworker_cuda_imported})
foreach(package IN LISTS _podworker_cuda_packages)
  string(REGEX REPLACE " .*" "" name "${package}")
  string(APPEND PODWORKER_CONFIG_CUDA_DEPENDENCIES
         "  find_package(${package} QUIET)\n"
         "  if(NOT ${name}_FOUND)\n"
         "    set(_podworker_cuda_missing \"\${_podworker_cuda_missing} ${name}\")\n"
         "  endif()\n")
endforeach()

# Recorded so consumers can match how the package was built.
set(PODWORKER_CONFIG_WITH_CUDA ${PODWORKER_HAVE_CUDA})
set(PODWORKER_CONFIG_CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
set(PODWORKER_CONFIG_SANITIZE ${PODWORKER_SANITIZE})
set(PODWORKER_CONFIG_RAPIDJSON_HINT "${PODWORKER_RAPIDJSON_INCLUDE}")

configure_package_config_file(
  "${CMAKE_CURRENT_LIST_DIR}/podworkerConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/podworkerConfig.cmake"
  INSTALL_DESTINATION ${PODWORKER_INSTALL_CMAKEDIR})
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/podworkerConfigVersion.cmake"
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(EXPORT podworkerTargets
  NAMESPACE podworker::
  DESTINATION ${PODWORKER_INSTALL_CMAKEDIR}
  COMPONENT core)
if(_podworker_cuda_exported)
  install(EXPORT podworkerCudaTargets
    NAMESPACE podworker::
    DESTINATION ${PODWORKER_INSTALL_CMAKEDIR}
    COMPONENT cuda)
endif()
install(FILES
  "${PROJECT_BINARY_DIR}/podworkerConfig.cmake"
  "${PROJECT_BINARY_DIR}/podworkerConfigVersion.cmake"
  DESTINATION ${PODWORKER_INSTALL_CMAKEDIR}
  COMPONENT core)
