# bash completion for safexec(1): the options, the accepted wrappers and the allowlisted tools;
# after the tool, the tool's own completion takes over.
_safexec()
{
    local cur i
    cur=${COMP_WORDS[COMP_CWORD]}
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            nohup | nice) ;;
            *)
                if declare -F _command_offset >/dev/null; then
                    _command_offset "$i"
                fi
                return
                ;;
        esac
    done
    if ((COMP_CWORD == 1)); then
        mapfile -t COMPREPLY < <(compgen -W '--kill= --help -h --version -v nohup nice wget curl cache-preload rg sha256sum cache-purge' -- "$cur")
        [[ ${COMPREPLY[0]-} == --kill= ]] && compopt -o nospace 2>/dev/null
    else
        mapfile -t COMPREPLY < <(compgen -W 'nohup nice wget curl cache-preload rg sha256sum cache-purge' -- "$cur")
    fi
}
complete -F _safexec safexec
